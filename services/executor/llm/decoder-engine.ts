/**
 * A decoder-only transformer on the GPU: one step computes any mix of prefill chunks and
 * decodes (the scheduler's StepItems) in one command encoder and one submit, and reads back
 * only what sampling needs: one u32 per greedy sequence (argmax on the GPU) and the logits row
 * of each sequence sampled on the host.
 *
 * Per step: embedding (+ learned positions) → per layer [norm → fused q/k/v projection →
 * rotary + KV-cache write → paged attention → output projection (+ residual) → norm → MLP up
 * (gelu_new, or SwiGLU's gate and up in one product) → MLP down (+ residual)] → final norm of
 * the sampled rows → lm_head → argmax. Every buffer, pipeline and bind group is made at load;
 * a step writes its token list, block tables and counts (a few hundred bytes) and encodes.
 */
import { failedPrecondition, ErrorCode, NexusError } from '../../domain/index.ts';
import { pipelineCacheFor, type GpuContext } from '../gpu/index.ts';
import type { KernelVariant } from '../kernels/index.ts';
import { BLOCK_TOKENS } from './block-pool.ts';
import { uploadWeights, type DeviceWeights, type MatrixChunk } from './device-weights.ts';
import type { EngineLayout, EngineLimits } from './engine-layout.ts';
import type { HostWeights } from './host-weights.ts';
import {
  Activation, argmaxVariant, attentionUsesSimd, attentionVariant, embedVariant, LINEAR_ROW_BLOCKS, linearLanes, linearVariant, normVariant, paramBlock,
  ropeCacheVariant, rowBlockFor, u32Params, type LinearAlgorithm,
} from './kernels.ts';
import type { ModelConfig } from './model-config.ts';

/** One sequence's part of a step (the scheduler's StepItem, plus what to return). */
export interface EngineItem {
  readonly startPosition: number;
  readonly tokens: readonly number[];
  readonly blockTable: readonly number[];
  /** For the chunk's last row: nothing (a prefill chunk), the argmax token, or the logits row. */
  readonly output: 'none' | 'argmax' | 'logits';
}

export interface ItemResult {
  readonly token?: number;
  readonly logits?: Float32Array;
}

type Grid = [number, number, number];

interface Op {
  readonly label: string;
  readonly variants: ReadonlyArray<{ pipeline: GPUComputePipeline; bindGroup: GPUBindGroup }>;
  /** The variant and grid for a step of `tokens` token rows and `rows` sampled rows. */
  pick(tokens: number, rows: number): { variant: number; grid: Grid };
}

const ceil = (value: number, divisor: number) => Math.ceil(value / divisor);

export class DecoderEngine {
  readonly layout: EngineLayout;
  private readonly gpu: GpuContext;
  private readonly config: ModelConfig;
  private readonly limits: EngineLimits;
  private readonly buffers: GPUBuffer[];
  private readonly ops: Op[];
  private readonly io: StepBuffers;
  private running: Promise<unknown> = Promise.resolve();
  private disposed = false;

  private constructor(gpu: GpuContext, config: ModelConfig, layout: EngineLayout, limits: EngineLimits, buffers: GPUBuffer[], ops: Op[], io: StepBuffers) {
    this.gpu = gpu;
    this.config = config;
    this.layout = layout;
    this.limits = limits;
    this.buffers = buffers;
    this.ops = ops;
    this.io = io;
  }

  /** Uploads the weights, allocates the KV cache and scratch, and builds every pipeline. */
  static async create(gpu: GpuContext, config: ModelConfig, layout: EngineLayout, limits: EngineLimits, weights: HostWeights, algorithm: LinearAlgorithm): Promise<DecoderEngine> {
    const { device } = gpu;
    const uploaded = uploadWeights(device, config, layout, weights);
    const buffers = [...uploaded.buffers];
    const scratch = (label: string, bytes: number, usage = 0) => {
      const buffer = device.createBuffer({ label, size: Math.max(16, Math.ceil(bytes / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | usage });
      buffers.push(buffer);
      return buffer;
    };
    const { maxStepTokens: tokens, maxSequences: rows } = limits;
    const { hiddenSize: hidden, vocabSize: vocab } = config;
    const io: StepBuffers = {
      step: device.createBuffer({ label: 'step', size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST }),
      tokenInfo: scratch('token info', tokens * 16),
      blockTables: scratch('block tables', rows * layout.maxBlocksPerSequence * 4),
      logitRows: scratch('sampled rows', rows * 4),
      x: scratch('residual stream', tokens * hidden * 4),
      normed: scratch('normed', tokens * hidden * 4),
      qkv: scratch('qkv', tokens * layout.qkvDim * 4),
      attention: scratch('attention', tokens * layout.qDim * 4),
      mlp: scratch('mlp', tokens * config.intermediateSize * 4),
      finalNormed: scratch('final normed', rows * hidden * 4),
      logits: scratch('logits', rows * vocab * 4, GPUBufferUsage.COPY_SRC),
      sampled: scratch('sampled tokens', rows * 4, GPUBufferUsage.COPY_SRC),
      readback: device.createBuffer({ label: 'readback', size: Math.ceil((rows * 4 + rows * vocab * 4) / 16) * 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST }),
      dummy: scratch('unused binding', 16),
    };
    buffers.push(io.step, io.readback);
    const kv = Array.from({ length: config.layers }, (_, layer) => ({
      keys: scratch(`layer ${layer} keys`, layout.kvBlocks * layout.kvBytesPerBlockPerLayer),
      values: scratch(`layer ${layer} values`, layout.kvBlocks * layout.kvBytesPerBlockPerLayer),
    }));
    try {
      const ops = await buildOps(gpu, config, layout, uploaded.weights, kv, io, algorithm, buffers);
      return new DecoderEngine(gpu, config, layout, limits, buffers, ops, io);
    } catch (error) {
      for (const buffer of buffers) buffer.destroy();
      throw error;
    }
  }

  /** Kernels one step dispatches when it samples. */
  get dispatchesPerStep(): number {
    return this.ops.length;
  }

  /** Runs one step; steps run one at a time, in call order. */
  step(items: readonly EngineItem[]): Promise<ItemResult[]> {
    if (this.disposed) return Promise.reject(failedPrecondition('the text-generation model is disposed'));
    const result = this.running.then(() => this.stepNow(items));
    this.running = result.catch(() => undefined);
    return result;
  }

  /**
   * Runs a step of each shape class (1, up to 4 and up to 8 rows of tokens and of sampled rows,
   * so every linear row block of every projection) on token 0 at positions the scheduler has
   * not handed out (nothing is allocated yet), inside a validation error scope: a kernel that
   * cannot run fails the load, not a request, and lavapipe's first-dispatch compiles happen here.
   */
  async warmUp(): Promise<void> {
    const blockTable = [0];
    const steps = [[1, 1], [4, 1], [8, 2]]
      .filter(([sequences, tokens]) => sequences <= this.limits.maxSequences && sequences * tokens <= this.limits.maxStepTokens && tokens <= this.layout.maxSequenceTokens);
    this.gpu.device.pushErrorScope('validation');
    for (const [sequences, tokens] of steps) {
      await this.step(Array.from({ length: sequences }, (): EngineItem => ({ startPosition: 0, tokens: new Array(tokens).fill(0), blockTable, output: 'logits' })));
    }
    const error = await this.gpu.device.popErrorScope();
    if (error) throw failedPrecondition(`the text-generation kernels failed their warm-up: ${error.message}`);
  }

  /** Frees every GPU buffer once the running step has finished; later steps reject. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    void this.running.then(() => {
      for (const buffer of this.buffers) buffer.destroy();
    });
  }

  private checkItems(items: readonly EngineItem[]): number {
    let tokens = 0;
    if (items.length > this.limits.maxSequences) throw new Error(`a step of ${items.length} sequences exceeds ${this.limits.maxSequences}`);
    for (const item of items) {
      tokens += item.tokens.length;
      const end = item.startPosition + item.tokens.length;
      if (item.tokens.length === 0 || end > this.layout.maxSequenceTokens) throw new Error(`positions ${item.startPosition}..${end} are outside the model`);
      if (item.blockTable.length < ceil(end, BLOCK_TOKENS) || item.blockTable.length > this.layout.maxBlocksPerSequence) throw new Error('a block table does not cover its positions');
      if (item.blockTable.some((block) => !(block >= 0 && block < this.layout.kvBlocks))) throw new Error('a block table names a block outside the pool');
      if (item.tokens.some((token) => !(token >= 0 && token < this.config.vocabSize))) throw new Error('a token is outside the vocabulary');
    }
    if (tokens > this.limits.maxStepTokens) throw new Error(`a step of ${tokens} tokens exceeds ${this.limits.maxStepTokens}`);
    return tokens;
  }

  private async stepNow(items: readonly EngineItem[]): Promise<ItemResult[]> {
    const { device } = this.gpu;
    const tokenCount = this.checkItems(items);
    const tokenInfo = new Uint32Array(tokenCount * 4);
    const blockTables = new Uint32Array(items.length * this.layout.maxBlocksPerSequence);
    const logitRows: number[] = [];
    const rowOf: number[] = [];
    let row = 0;
    items.forEach((item, sequence) => {
      blockTables.set(item.blockTable, sequence * this.layout.maxBlocksPerSequence);
      item.tokens.forEach((token, offset) => tokenInfo.set([token, item.startPosition + offset, sequence, 0], (row + offset) * 4));
      row += item.tokens.length;
      rowOf.push(item.output === 'none' ? -1 : logitRows.length);
      if (item.output !== 'none') logitRows.push(row - 1);
    });
    const sampledRows = logitRows.length;
    const { io } = this;
    device.queue.writeBuffer(io.step, 0, new Uint32Array([tokenCount, sampledRows, 0, 0]));
    device.queue.writeBuffer(io.tokenInfo, 0, tokenInfo);
    device.queue.writeBuffer(io.blockTables, 0, blockTables);
    if (sampledRows > 0) device.queue.writeBuffer(io.logitRows, 0, new Uint32Array(logitRows));

    const encoder = device.createCommandEncoder({ label: 'decoder step' });
    const pass = encoder.beginComputePass({ label: 'decoder step' });
    for (const op of this.ops) {
      const { variant, grid } = op.pick(tokenCount, sampledRows);
      if (grid.some((count) => count === 0)) continue;
      pass.setPipeline(op.variants[variant].pipeline);
      pass.setBindGroup(0, op.variants[variant].bindGroup);
      pass.dispatchWorkgroups(...grid);
    }
    pass.end();
    const vocab = this.config.vocabSize;
    const logitsAt = new Map<number, number>();
    let readBytes = sampledRows * 4;
    if (sampledRows > 0) encoder.copyBufferToBuffer(io.sampled, 0, io.readback, 0, sampledRows * 4);
    items.forEach((item, index) => {
      if (item.output !== 'logits') return;
      encoder.copyBufferToBuffer(io.logits, rowOf[index] * vocab * 4, io.readback, readBytes, vocab * 4);
      logitsAt.set(index, readBytes);
      readBytes += vocab * 4;
    });
    device.queue.submit([encoder.finish()]);
    if (sampledRows === 0) {
      await device.queue.onSubmittedWorkDone();
      return items.map(() => ({}));
    }
    await io.readback.mapAsync(GPUMapMode.READ, 0, Math.ceil(readBytes / 8) * 8);
    try {
      const mapped = io.readback.getMappedRange(0, Math.ceil(readBytes / 8) * 8);
      const tokens = new Uint32Array(mapped, 0, sampledRows).slice();
      return items.map((item, index) => {
        if (item.output === 'none') return {};
        const at = logitsAt.get(index);
        return { token: tokens[rowOf[index]], logits: at === undefined ? undefined : new Float32Array(mapped, at, vocab).slice() };
      });
    } finally {
      io.readback.unmap();
    }
  }
}

interface StepBuffers {
  readonly step: GPUBuffer;
  readonly tokenInfo: GPUBuffer;
  readonly blockTables: GPUBuffer;
  readonly logitRows: GPUBuffer;
  readonly x: GPUBuffer;
  readonly normed: GPUBuffer;
  readonly qkv: GPUBuffer;
  readonly attention: GPUBuffer;
  readonly mlp: GPUBuffer;
  readonly finalNormed: GPUBuffer;
  readonly logits: GPUBuffer;
  readonly sampled: GPUBuffer;
  readonly readback: GPUBuffer;
  readonly dummy: GPUBuffer;
}

/** Every dispatch of a step, in order, with its pipelines and bind groups built. */
async function buildOps(
  gpu: GpuContext, config: ModelConfig, layout: EngineLayout, weights: DeviceWeights, kv: ReadonlyArray<{ keys: GPUBuffer; values: GPUBuffer }>,
  io: StepBuffers, algorithm: LinearAlgorithm, buffers: GPUBuffer[],
): Promise<Op[]> {
  const { device } = gpu;
  const cache = pipelineCacheFor(device);
  const pending: Array<Promise<Op>> = [];
  const add = (label: string, variants: readonly KernelVariant[], storage: readonly GPUBuffer[], params: ArrayBuffer, pick: Op['pick']) => {
    const uniform = device.createBuffer({ label: `${label} params`, size: params.byteLength, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(uniform, 0, params);
    buffers.push(uniform);
    pending.push(Promise.all(variants.map((variant) => cache.get(variant))).then((built) => ({
      label,
      pick,
      variants: built.map((pipeline) => ({
        pipeline: pipeline.pipeline,
        bindGroup: device.createBindGroup({
          label, layout: pipeline.bindGroupLayout,
          entries: [...storage, uniform, io.step].map((buffer, binding) => ({ binding, resource: { buffer } })),
        }),
      })),
    })));
  };
  const { hiddenSize: hidden, vocabSize: vocab } = config;
  const { weightType, kvType } = layout;
  const llama = config.family === 'llama';
  const lanes = linearLanes(algorithm);

  const linear = (label: string, chunks: readonly MatrixChunk[], input: GPUBuffer, inputs: number, xStride: number, output: GPUBuffer, outStride: number,
    activation: Activation, accumulate: boolean, rowsFromLogits: boolean) => {
    for (const chunk of chunks) {
      const variants = LINEAR_ROW_BLOCKS.map((rows) => linearVariant({ algorithm, weightType, rows, hasBias: chunk.hasBias, activation, accumulate, rowsFromLogits }));
      const stride4 = activation === Activation.SwiGlu ? 2 * chunk.n4 : chunk.n4;
      add(`${label} [${chunk.start}, ${chunk.start + chunk.width})`, variants, [input, chunk.weight, chunk.bias, output],
        u32Params(inputs, chunk.n4, chunk.width, xStride, outStride, chunk.start, stride4, 0),
        (tokens, sampled) => {
          const rows = rowsFromLogits ? sampled : tokens;
          const block = rowBlockFor(rows);
          return { variant: LINEAR_ROW_BLOCKS.indexOf(block as 1 | 4 | 8), grid: [ceil(chunk.n4, lanes), ceil(rows, block), 1] };
        });
    }
  };
  const norm = (label: string, weight: GPUBuffer, bias: GPUBuffer | undefined, input: GPUBuffer, output: GPUBuffer, gather: boolean) => {
    add(label, [normVariant(weightType, llama, bias !== undefined, gather)], [input, weight, bias ?? io.dummy, gather ? io.logitRows : io.dummy, output],
      paramBlock([{ u32: hidden }, { f32: config.normEpsilon }, { u32: 0 }, { u32: 0 }]),
      (tokens, sampled) => ({ variant: 0, grid: [gather ? sampled : tokens, 1, 1] }));
  };

  for (const chunk of weights.embedding) {
    add(`embedding [${chunk.vocabStart}, ${chunk.vocabEnd})`, [embedVariant(weightType, weights.positions !== undefined, chunk.transposed)],
      [io.tokenInfo, chunk.table, weights.positions ?? io.dummy, io.x], u32Params(hidden, chunk.stride, chunk.vocabStart, chunk.vocabEnd),
      (tokens) => ({ variant: 0, grid: [ceil(hidden, 64), tokens, 1] }));
  }
  const half = config.headDim / 2;
  const ropeUnits = (llama ? (config.heads + config.kvHeads) * half : config.kvHeads * config.headDim) + config.kvHeads * config.headDim;
  weights.layers.forEach((layer, index) => {
    const label = `layer ${index}`;
    norm(`${label} norm 1`, layer.norm1Weight, layer.norm1Bias, io.x, io.normed, false);
    linear(`${label} qkv`, layer.qkv, io.normed, hidden, hidden, io.qkv, layout.qkvDim, Activation.None, false, false);
    const headParams = [config.heads, config.kvHeads, config.headDim, layout.qkvDim, layout.maxBlocksPerSequence] as const;
    add(`${label} rotary + KV write`, [ropeCacheVariant(kvType, llama, BLOCK_TOKENS)],
      [io.tokenInfo, io.blockTables, io.qkv, weights.ropeTable ?? io.dummy, kv[index].keys, kv[index].values], u32Params(...headParams, 0, 0, 0),
      (tokens) => ({ variant: 0, grid: [ceil(ropeUnits, 64), tokens, 1] }));
    const scale = (1 / Math.sqrt(config.headDim)) / (config.scaleByInverseLayer ? index + 1 : 1);
    add(`${label} paged attention`, [attentionVariant(kvType, config.headDim, BLOCK_TOKENS, attentionUsesSimd(algorithm, config.headDim))],
      [io.tokenInfo, io.blockTables, io.qkv, kv[index].keys, kv[index].values, io.attention],
      paramBlock([...headParams.map((u32) => ({ u32 })), { u32: config.heads / config.kvHeads }, { f32: scale }, { u32: 0 }]),
      (tokens) => ({ variant: 0, grid: [config.heads, tokens, 1] }));
    linear(`${label} attention output`, layer.output, io.attention, layout.qDim, layout.qDim, io.x, hidden, Activation.None, true, false);
    norm(`${label} norm 2`, layer.norm2Weight, layer.norm2Bias, io.x, io.normed, false);
    linear(`${label} mlp up`, layer.up, io.normed, hidden, hidden, io.mlp, config.intermediateSize, llama ? Activation.SwiGlu : Activation.GeluNew, false, false);
    linear(`${label} mlp down`, layer.down, io.mlp, config.intermediateSize, config.intermediateSize, io.x, hidden, Activation.None, true, false);
  });
  norm('final norm', weights.finalNormWeight, weights.finalNormBias, io.x, io.finalNormed, true);
  linear('lm_head', weights.lmHead, io.finalNormed, hidden, hidden, io.logits, vocab, Activation.None, false, true);
  add('argmax', [argmaxVariant()], [io.logits, io.sampled], u32Params(vocab, vocab, 0, 0), (_tokens, sampled) => ({ variant: 0, grid: [sampled, 1, 1] }));
  try {
    return await Promise.all(pending);
  } catch (error) {
    throw error instanceof NexusError ? error : new NexusError(ErrorCode.INTERNAL, `text-generation pipelines failed to build: ${(error as Error).message}`);
  }
}
