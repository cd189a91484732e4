/**
 * The decoder engine's GPU memory, computed from the config alone before anything is
 * allocated, so a load can reserve its bytes in the executor's GPU budget first: weights in
 * their storage type (f32, or f16 in fp16 mode) with output columns padded to multiples of 4,
 * the paged KV cache (as many blocks as the KV budget and one storage binding per layer hold),
 * and the step's scratch buffers. A matrix larger than one storage binding is split into
 * column chunks, each its own buffer and dispatch. Pure.
 */
import { ErrorCode, failedPrecondition, NexusError } from '../../domain/index.ts';
import type { Precision } from '../runtime/index.ts';
import { BLOCK_TOKENS } from './block-pool.ts';
import type { ModelConfig } from './model-config.ts';

export interface EngineLimits {
  /** Tokens one step computes at most (the scratch buffers' rows). */
  readonly maxStepTokens: number;
  /** Sequences one step holds at most (sampled rows, block tables). */
  readonly maxSequences: number;
  /** The device's maxStorageBufferBindingSize. */
  readonly maxBindingBytes: number;
  /** Largest chunk of one weight matrix: maxBindingBytes, or less (tests exercise chunking). */
  readonly weightChunkBytes: number;
}

export interface EngineLayout {
  readonly weightType: 'f32' | 'f16';
  readonly kvType: 'f32' | 'f16';
  readonly qDim: number;
  readonly kvDim: number;
  readonly qkvDim: number;
  /** Output column widths of each chunk of a matrix with `inputs` rows and `outputs` columns. */
  chunkWidths(inputs: number, outputs: number, glu: boolean): number[];
  /** Vocabulary rows per chunk of an untied embedding table. */
  readonly embeddingRowsPerChunk: number;
  readonly weightBytes: number;
  /** Keys and values of one position in every layer. */
  readonly kvBytesPerToken: number;
  /** One layer's keys (or values) of one block. */
  readonly kvBytesPerBlockPerLayer: number;
  readonly kvBlocks: number;
  readonly maxBlocksPerSequence: number;
  /** The longest sequence: the model's, or less when the KV cache holds fewer positions. */
  readonly maxSequenceTokens: number;
  readonly scratchBytes: number;
  /** Weights, KV cache and scratch: what the model holds on the GPU. */
  readonly gpuBytes: number;
}

const padded4 = (count: number) => Math.ceil(count / 4) * 4;

/**
 * The layout of `config` in `precision` with a KV cache of at most `kvBudgetBytes`. Throws
 * RESOURCE_EXHAUSTED when the budget holds no block, FAILED_PRECONDITION when a tensor cannot
 * be bound at all.
 */
export function engineLayout(config: ModelConfig, precision: Precision, kvBudgetBytes: number, limits: EngineLimits): EngineLayout {
  const weightType = precision === 'fp16' ? 'f16' : 'f32';
  const weightBytesPer = weightType === 'f16' ? 2 : 4;
  const { hiddenSize: hidden, vocabSize: vocab, intermediateSize: inter, headDim, layers } = config;
  const qDim = config.heads * headDim;
  const kvDim = config.kvHeads * headDim;
  const qkvDim = qDim + 2 * kvDim;
  const maxBinding = limits.maxBindingBytes;
  const chunkBytes = Math.min(limits.weightChunkBytes, maxBinding);

  const chunkWidths = (inputs: number, outputs: number, glu: boolean): number[] => {
    const halves = glu ? 2 : 1;
    const columns = Math.floor(chunkBytes / (inputs * weightBytesPer * halves) / 4) * 4;
    if (columns < 4) throw failedPrecondition(`a ${inputs}-row weight matrix does not fit one storage binding of ${chunkBytes} bytes (maxStorageBufferBindingSize)`);
    const widths: number[] = [];
    for (let start = 0; start < outputs; start += columns) widths.push(Math.min(columns, outputs - start));
    return widths;
  };
  const matrixBytes = (inputs: number, outputs: number, glu: boolean) => {
    const halves = glu ? 2 : 1;
    const columns = chunkWidths(inputs, outputs, glu).reduce((total, width) => total + padded4(width), 0);
    // Weights, plus an f32 bias row of the same padded width.
    return columns * halves * (inputs * weightBytesPer + 4);
  };
  const normBytes = hidden * weightBytesPer * (config.family === 'gpt2' ? 2 : 1);
  let weightBytes = 0;
  for (let layer = 0; layer < layers; layer++) {
    weightBytes += 2 * normBytes + matrixBytes(hidden, qkvDim, false) + matrixBytes(qDim, hidden, false)
      + matrixBytes(hidden, inter, config.family === 'llama') + matrixBytes(inter, hidden, false);
  }
  weightBytes += normBytes + matrixBytes(hidden, vocab, false);
  const embeddingRowsPerChunk = Math.floor(chunkBytes / (hidden * weightBytesPer));
  if (!config.tiedEmbeddings) weightBytes += vocab * hidden * weightBytesPer;
  if (config.family === 'gpt2') {
    const positionBytes = config.maxPositions * hidden * weightBytesPer;
    if (positionBytes > maxBinding) throw failedPrecondition(`the position embedding's ${positionBytes} bytes do not fit one storage binding of ${maxBinding} bytes`);
    weightBytes += positionBytes;
  }

  const kvType = weightType;
  const kvBytesPerBlockPerLayer = config.kvHeads * BLOCK_TOKENS * headDim * (kvType === 'f16' ? 2 : 4);
  const kvBytesPerToken = (2 * layers * kvBytesPerBlockPerLayer) / BLOCK_TOKENS;
  const maxBlocksPerSequence = Math.ceil(config.maxPositions / BLOCK_TOKENS);
  const kvBlocks = Math.min(
    Math.floor(kvBudgetBytes / (kvBytesPerToken * BLOCK_TOKENS)),
    Math.floor(maxBinding / kvBytesPerBlockPerLayer),
    // More would never be used: at most maxSequences sequences of the longest length run.
    limits.maxSequences * maxBlocksPerSequence,
  );
  if (kvBlocks < 1) {
    throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
      `the KV cache budget of ${kvBudgetBytes} bytes holds no block of ${BLOCK_TOKENS} positions (${kvBytesPerToken * BLOCK_TOKENS} bytes); raise NEXUS_KV_BUDGET_BYTES`);
  }
  const maxSequenceTokens = Math.min(config.maxPositions, kvBlocks * BLOCK_TOKENS);

  const tokens = limits.maxStepTokens;
  const rows = limits.maxSequences;
  const logitBytes = rows * vocab * 4;
  if (logitBytes > maxBinding) throw failedPrecondition(`${rows} rows of ${vocab} logits do not fit one storage binding of ${maxBinding} bytes; lower the sequences per step`);
  const scratchBytes = 4 * (tokens * (2 * hidden + qkvDim + qDim + inter + 4) + rows * (hidden + 2 * vocab + 2 + maxBlocksPerSequence))
    + (config.family === 'llama' ? config.maxPositions * headDim * 4 : 0);
  const kvBytes = 2 * layers * kvBlocks * kvBytesPerBlockPerLayer;
  return {
    weightType, kvType, qDim, kvDim, qkvDim, chunkWidths, embeddingRowsPerChunk, weightBytes, kvBytesPerToken, kvBytesPerBlockPerLayer,
    kvBlocks, maxBlocksPerSequence, maxSequenceTokens, scratchBytes, gpuBytes: weightBytes + kvBytes + scratchBytes,
  };
}
