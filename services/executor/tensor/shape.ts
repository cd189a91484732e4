/**
 * Shape maths every layer shares: element counts, row-major strides, numpy broadcasting, axis
 * normalization and dim merging. Pure; errors are INVALID_ARGUMENT naming the shapes.
 */
import { invalidArgument } from '../../domain/errors.ts';

/** Product of the dims: the element count of a shape (1 for a scalar). */
export const product = (dims: readonly number[]): number => dims.reduce((total, dim) => total * dim, 1);

/** "[2, 3]", for error messages. */
export const showShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

/** True when both shapes have the same rank and dims; false when either is unknown. */
export function sameShape(left: readonly number[] | undefined, right: readonly number[] | undefined): boolean {
  return Boolean(left && right && left.length === right.length && left.every((dim, index) => dim === right[index]));
}

/** Row-major element strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let stride = 1;
  for (let dim = shape.length - 1; dim >= 0; dim--) {
    strides[dim] = stride;
    stride *= shape[dim];
  }
  return strides;
}

/** The numpy (multidirectional) broadcast of any number of shapes. */
export function broadcastShapes(...shapes: ReadonlyArray<readonly number[]>): number[] {
  const rank = Math.max(0, ...shapes.map((shape) => shape.length));
  const out: number[] = [];
  for (let dim = 0; dim < rank; dim++) {
    let size = 1;
    for (const shape of shapes) {
      const value = shape[dim - (rank - shape.length)] ?? 1;
      if (value === 1) continue;
      if (size !== 1 && value !== size) {
        throw invalidArgument(`shapes ${shapes.map(showShape).join(' and ')} do not broadcast (dim ${dim}: ${size} vs ${value})`);
      }
      size = value;
    }
    // A 0-sized dim broadcasts against 1 only; 0 wins over 1.
    if (shapes.some((shape) => (shape[dim - (rank - shape.length)] ?? 1) === 0)) size = 0;
    out.push(size);
  }
  return out;
}

/** Element strides of `shape` over the dims of `outShape` it broadcasts to (0 where broadcast). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const offset = outShape.length - shape.length;
  const strides = new Array<number>(outShape.length).fill(0);
  let stride = 1;
  for (let dim = shape.length - 1; dim >= 0; dim--) {
    strides[dim + offset] = shape[dim] === 1 ? 0 : stride;
    stride *= shape[dim];
  }
  return strides;
}

/**
 * Drops size-1 dims of `shape` and merges neighbouring dims across which every stride set stays
 * contiguous (stepping the outer dim once equals stepping the inner one `size` times), so kernels
 * unravel as few dims as possible. Returns at least one dim.
 */
export function mergeDims(shape: readonly number[], strideSets: ReadonlyArray<readonly number[]>): { shape: number[]; strides: number[][] } {
  const merged = { shape: [] as number[], strides: strideSets.map(() => [] as number[]) };
  for (let dim = 0; dim < shape.length; dim++) {
    const size = shape[dim];
    if (size === 1) continue;
    const last = merged.shape.length - 1;
    if (last >= 0 && strideSets.every((strides, set) => merged.strides[set][last] === strides[dim] * size)) {
      merged.shape[last] *= size;
      strideSets.forEach((strides, set) => { merged.strides[set][last] = strides[dim]; });
    } else {
      merged.shape.push(size);
      strideSets.forEach((strides, set) => merged.strides[set].push(strides[dim]));
    }
  }
  if (merged.shape.length === 0) {
    merged.shape.push(1);
    merged.strides.forEach((strides) => strides.push(0));
  }
  return merged;
}

/** An axis in [-rank, rank - 1] (or [-rank, rank] with `allowEnd`) as a non-negative index. */
export function normalizeAxis(axis: number, rank: number, allowEnd = false): number {
  const upper = allowEnd ? rank : rank - 1;
  if (!Number.isInteger(axis) || axis < -rank || axis > upper) {
    throw invalidArgument(`axis ${axis} is out of range for rank ${rank} (allowed ${-rank}..${upper})`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Distinct normalized axes, sorted. */
export function normalizeAxes(axes: readonly number[], rank: number): number[] {
  const normalized = axes.map((axis) => normalizeAxis(axis, rank));
  if (new Set(normalized).size !== normalized.length) throw invalidArgument(`axes [${axes}] repeat an axis`);
  return normalized.sort((left, right) => left - right);
}
