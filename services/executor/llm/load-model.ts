/**
 * Loading a text-generation model from a checkpoint directory: config first, then the GPU bytes
 * of weights, KV cache and scratch computed and reserved (the caller's GPU budget) before any
 * weight is converted or any buffer allocated, then the strict safetensors read, the upload,
 * every pipeline built and a warm-up step, so no request pays a compile.
 */
import { ErrorCode, NexusError } from '../../domain/index.ts';
import type { GpuContext } from '../gpu/index.ts';
import type { Precision } from '../runtime/index.ts';
import { readCheckpointConfig, readCheckpointTensors, type CheckpointFiles } from './checkpoint.ts';
import { DecoderEngine } from './decoder-engine.ts';
import { engineLayout } from './engine-layout.ts';
import { hostWeightsOf } from './host-weights.ts';
import type { LinearAlgorithm } from './kernels.ts';
import { TextGenerationModel, type GenerationOptions } from './text-generation-model.ts';

/** Step and queue limits when the caller sets none. */
export const DEFAULT_GENERATION_LIMITS = {
  /** Tokens per step, decodes and prefill chunks together. */
  maxStepTokens: 512,
  /** Prefill tokens per step. */
  maxPrefillTokens: 512,
  /** Sequences per step. */
  maxSequences: 64,
  /** Sequences waiting or running per model. */
  maxQueuedSequences: 1024,
} as const;

export interface TextGenerationLoadOptions {
  /** fp32, or fp16 (weights and KV cache stored as f16) where the device has shader-f16. */
  precision: Precision;
  /** Most bytes the paged KV cache may take. */
  kvBudgetBytes: number;
  /** Most bytes of weights (the compile budget's weightBytes, NEXUS_WEIGHT_BUDGET_BYTES). */
  weightBudgetBytes?: number;
  /** Called with the model's GPU bytes before anything is allocated; throws to refuse the load. */
  reserve?: (bytes: number) => void;
  /** Step and queue limits; each one left out keeps DEFAULT_GENERATION_LIMITS. */
  limits?: Partial<Omit<GenerationOptions, 'onLogits'>>;
  /** Default: simd on a software adapter with subgroups, else plain; NEXUS_GEMM=tiled forces plain. */
  algorithm?: LinearAlgorithm;
  /** Tests: weight matrices split into chunks of at most this many bytes, to exercise chunking. */
  weightChunkBytes?: number;
  /** Tests: every sampled row's logits. */
  onLogits?: GenerationOptions['onLogits'];
}

/** The projection kernel for `gpu`: the option, else NEXUS_GEMM (tiled → plain), else by the adapter. */
function linearAlgorithmFor(gpu: GpuContext, option: LinearAlgorithm | undefined): LinearAlgorithm {
  const simdPossible = gpu.hasSubgroups && gpu.subgroupMinSize >= 8;
  const wanted = option ?? (process.env.NEXUS_GEMM === 'tiled' ? 'plain' : process.env.NEXUS_GEMM === 'simd' ? 'simd' : undefined);
  if (wanted === 'plain') return 'plain';
  if (wanted === 'simd') return simdPossible ? 'simd' : 'plain';
  return gpu.isSoftware && simdPossible ? 'simd' : 'plain';
}

/** Loads the checkpoint in `files` onto `gpu` (see the file comment). */
export async function loadTextGenerationModel(gpu: GpuContext, files: CheckpointFiles, options: TextGenerationLoadOptions): Promise<TextGenerationModel> {
  const { config } = await readCheckpointConfig(files);
  const precision: Precision = options.precision === 'fp16' && gpu.hasF16 ? 'fp16' : 'fp32';
  const limits = { ...DEFAULT_GENERATION_LIMITS, ...options.limits };
  const maxSequences = limits.maxSequences;
  const engineLimits = {
    maxStepTokens: Math.max(limits.maxStepTokens, maxSequences), maxSequences,
    maxBindingBytes: gpu.device.limits.maxStorageBufferBindingSize,
    weightChunkBytes: options.weightChunkBytes ?? gpu.device.limits.maxStorageBufferBindingSize,
  };
  const layout = engineLayout(config, precision, options.kvBudgetBytes, engineLimits);
  if (options.weightBudgetBytes !== undefined && layout.weightBytes > options.weightBudgetBytes) {
    throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
      `${config.architecture} of ${layout.weightBytes} bytes of weights is over the weight budget of ${options.weightBudgetBytes} bytes (weightBytes, NEXUS_WEIGHT_BUDGET_BYTES)`);
  }
  options.reserve?.(layout.gpuBytes);
  const weights = hostWeightsOf(config, await readCheckpointTensors(files));
  const engine = await DecoderEngine.create(gpu, config, layout, engineLimits, weights, linearAlgorithmFor(gpu, options.algorithm));
  try {
    await engine.warmUp();
  } catch (error) {
    engine.dispose();
    throw error;
  }
  return new TextGenerationModel(engine, config.vocabSize, precision, {
    maxStepTokens: engineLimits.maxStepTokens, maxPrefillTokens: limits.maxPrefillTokens, maxSequences, maxQueuedSequences: limits.maxQueuedSequences,
    onLogits: options.onLogits,
  });
}
