/**
 * What every kernel descriptor is made of: the variant a pipeline is built from, and the
 * per-shape dispatch (workgroup counts and uniform bytes).
 */

/** How a binding is declared in WGSL: `var<storage, read>`, `var<storage, read_write>`, `var<uniform>`. */
export type BindingKind = 'read-only-storage' | 'storage' | 'uniform';

/**
 * Everything that changes a compiled pipeline. Shapes never appear here: they go in uniforms,
 * so one pipeline serves every shape.
 */
export interface KernelVariant {
  /** WGSL file under shaders/, e.g. "matmul/matmul.wgsl". Its bindings never change. */
  readonly shader: string;
  /** WGSL override constants, booleans as 0 / 1 (workgroup sizes included). */
  readonly constants: Readonly<Record<string, number>>;
  /** Group-0 bindings in binding order; the last one is the uniform block. */
  readonly bindings: readonly BindingKind[];
}

/** One dispatch of a kernel for concrete shapes. */
export interface Dispatch {
  /** Which of the operator's variants runs it (e.g. a skinny matmul tile); default 0. */
  readonly variant?: number;
  /** Workgroup counts (x, y, z); a zero count means there is nothing to compute. */
  readonly workgroups: readonly [number, number, number];
  /** The uniform block's bytes, laid out as the shader's `Params` struct. */
  readonly uniforms: ArrayBuffer;
}

/**
 * Workgroup counts for `workgroupCount` workgroups laid out row-major over x then y, so that no
 * dimension exceeds `maxPerDimension` (65535 by default in WebGPU). Shaders recover the linear
 * workgroup index as `workgroup_id.y * num_workgroups.x + workgroup_id.x` and skip the tail.
 */
export function linearGrid(workgroupCount: number, maxPerDimension: number): [number, number, number] {
  if (workgroupCount <= maxPerDimension) return [workgroupCount, 1, 1];
  const rows = Math.ceil(workgroupCount / maxPerDimension);
  if (rows > maxPerDimension) {
    throw new RangeError(`${workgroupCount} workgroups exceed the ${maxPerDimension}² grid this kernel supports`);
  }
  return [Math.ceil(workgroupCount / rows), rows, 1];
}

/**
 * Writes a WGSL uniform struct field by field, in declaration order. Fields are 4-byte scalars
 * or vec4s of them; the caller keeps the WGSL alignment (vec4 on 16 bytes) by padding.
 */
export class UniformWriter {
  private readonly view: DataView;
  private offset = 0;

  constructor(byteLength: number) {
    // Uniform buffer bindings are sized in multiples of 16 bytes.
    this.view = new DataView(new ArrayBuffer(Math.ceil(byteLength / 16) * 16));
  }

  u32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
      throw new RangeError(`uniform value ${value} does not fit in a u32`);
    }
    this.view.setUint32(this.offset, value, true);
    this.offset += 4;
    return this;
  }

  f32(value: number): this {
    this.view.setFloat32(this.offset, value, true);
    this.offset += 4;
    return this;
  }

  /** A vec4<u32>: the values, then zeros up to 4. */
  vec4u32(values: readonly number[]): this {
    if (values.length > 4) throw new RangeError(`${values.length} values do not fit in a vec4`);
    for (let lane = 0; lane < 4; lane++) this.u32(values[lane] ?? 0);
    return this;
  }

  finish(): ArrayBuffer {
    return this.view.buffer as ArrayBuffer;
  }
}
