/**
 * The decoder's WGSL kernels (shaders/llm/): for each, the pipeline variant (what changes the
 * shader: file, types, unroll counts, override constants) and its parameter block. Shapes that
 * change per step (token and sampled-row counts) travel in the step's uniform block
 * (shaders/llm/step.wgsl), so one pipeline and one bind group serve every step.
 */
import type { KernelVariant } from '../kernels/index.ts';

/** shaders/llm/linear_simd.wgsl (lavapipe: one 8-lane subgroup per workgroup) or linear.wgsl (GPUs). */
export type LinearAlgorithm = 'simd' | 'plain';

/**
 * Rows per invocation of the linear kernel's variants: one row (decoding one sequence), a few,
 * many. More than 8 unrolled rows made lavapipe's first compile of a variant take seconds.
 */
export const LINEAR_ROW_BLOCKS = [1, 4, 8] as const;

/** The row block for a product of `rows` rows: never more than twice the rows needed. */
export function rowBlockFor(rows: number): number {
  if (rows <= 1) return 1;
  return rows <= 4 ? 4 : 8;
}

/** Invocations along the columns of one linear workgroup (each owns 4 columns). */
export const linearLanes = (algorithm: LinearAlgorithm) => (algorithm === 'simd' ? 8 : 64);

/** The epilogue's activation (ACT in shaders/llm/linear_epilogue.wgsl). */
export const Activation = { None: 0, GeluNew: 1, SwiGlu: 2 } as const;
export type Activation = (typeof Activation)[keyof typeof Activation];

export interface LinearOptions {
  readonly algorithm: LinearAlgorithm;
  readonly weightType: 'f32' | 'f16';
  readonly rows: number;
  readonly hasBias: boolean;
  readonly activation: Activation;
  /** Adds into the output (the residual stream). */
  readonly accumulate: boolean;
  /** Rows are the step's sampled rows (lm_head) rather than its tokens. */
  readonly rowsFromLogits: boolean;
}

const STEP_PRELUDE = 'llm/step.wgsl';

export function linearVariant(options: LinearOptions): KernelVariant {
  return {
    shader: options.algorithm === 'simd' ? 'llm/linear_simd.wgsl' : 'llm/linear.wgsl',
    preludes: [STEP_PRELUDE, 'llm/linear_epilogue.wgsl'],
    types: { W: options.weightType },
    unroll: options.algorithm === 'simd' ? { ROWS: options.rows, LANES: 8 } : { ROWS: options.rows },
    constants: {
      HAS_BIAS: Number(options.hasBias), ACT: options.activation, ACCUMULATE: Number(options.accumulate), ROWS_FROM_LOGITS: Number(options.rowsFromLogits),
    },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform', 'uniform'],
  };
}

export function embedVariant(weightType: 'f32' | 'f16', hasPositions: boolean, transposed: boolean): KernelVariant {
  return {
    shader: 'llm/embed.wgsl', preludes: [STEP_PRELUDE], types: { W: weightType },
    constants: { HAS_POSITIONS: Number(hasPositions), TRANSPOSED: Number(transposed) },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform', 'uniform'],
  };
}

export function normVariant(weightType: 'f32' | 'f16', rms: boolean, hasBias: boolean, gather: boolean): KernelVariant {
  return {
    shader: 'llm/norm.wgsl', preludes: [STEP_PRELUDE], types: { W: weightType },
    constants: { RMS: Number(rms), HAS_BIAS: Number(hasBias), GATHER: Number(gather) },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform', 'uniform'],
  };
}

export function ropeCacheVariant(kvType: 'f32' | 'f16', rope: boolean, blockTokens: number): KernelVariant {
  return {
    shader: 'llm/rope_cache.wgsl', preludes: [STEP_PRELUDE], types: { KV: kvType },
    constants: { ROPE: Number(rope), BLOCK_TOKENS: blockTokens },
    bindings: ['read-only-storage', 'read-only-storage', 'storage', 'read-only-storage', 'storage', 'storage', 'uniform', 'uniform'],
  };
}

/**
 * shaders/llm/paged_attention_simd.wgsl (one 8-lane subgroup, no barriers: software GPUs with
 * subgroups, head_dim a multiple of 4) or paged_attention.wgsl (a 64-lane workgroup).
 */
export const attentionUsesSimd = (algorithm: LinearAlgorithm, headDim: number) => algorithm === 'simd' && headDim % 4 === 0;

export function attentionVariant(kvType: 'f32' | 'f16', headDim: number, blockTokens: number, simd: boolean): KernelVariant {
  if (simd) {
    return {
      shader: 'llm/paged_attention_simd.wgsl', preludes: [STEP_PRELUDE], types: { KV: kvType },
      unroll: { DIM4: Math.ceil(headDim / 32) }, constants: { BLOCK_TOKENS: blockTokens },
      bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform', 'uniform'],
    };
  }
  return {
    shader: 'llm/paged_attention.wgsl', preludes: [STEP_PRELUDE], types: { KV: kvType },
    unroll: { DIM_SLOTS: Math.ceil(headDim / 64) },
    constants: { BLOCK_TOKENS: blockTokens },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform', 'uniform'],
  };
}

export function argmaxVariant(): KernelVariant {
  return { shader: 'llm/argmax.wgsl', preludes: [STEP_PRELUDE], constants: {}, bindings: ['read-only-storage', 'storage', 'uniform', 'uniform'] };
}

/** A parameter block of 4-byte fields in declaration order, padded to 16 bytes. */
export function paramBlock(fields: ReadonlyArray<{ u32: number } | { f32: number }>): ArrayBuffer {
  const view = new DataView(new ArrayBuffer(Math.ceil((fields.length * 4) / 16) * 16 || 16));
  fields.forEach((field, index) => {
    if ('u32' in field) {
      if (!Number.isInteger(field.u32) || field.u32 < 0 || field.u32 > 0xffff_ffff) throw new RangeError(`parameter ${field.u32} does not fit in a u32`);
      view.setUint32(index * 4, field.u32, true);
    } else {
      view.setFloat32(index * 4, field.f32, true);
    }
  });
  return view.buffer;
}

/** u32 fields, for the blocks that hold nothing else. */
export const u32Params = (...values: number[]) => paramBlock(values.map((u32) => ({ u32 })));
