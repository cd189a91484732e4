/**
 * Normalization over groups of elements (shaders/norm/group_norm.wgsl): Instance-, Group-,
 * MeanVariance-, RMS- and LayerNormalization with its statistics. The host lays the problem out
 * as kept dims (one group per kept index) and reduced dims (the elements of a group), each with
 * its strides into x, scale and bias.
 */
import { broadcastStrides, product, stridesOf, type StorageType } from '../tensor/index.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

/** What to normalize: x of `shape` over `axes`; scale and bias broadcast to `shape` right-aligned. */
export interface NormalizationProblem {
  readonly shape: readonly number[];
  readonly axes: readonly number[];
  readonly scaleShape?: readonly number[];
  readonly biasShape?: readonly number[];
  readonly epsilon: number;
  /** Subtract the mean (false: RMSNormalization divides by the root mean square). */
  readonly center: boolean;
  /** 1 / (std + epsilon), MeanVarianceNormalization's form, instead of 1 / sqrt(var + epsilon). */
  readonly epsilonOutside: boolean;
}

const WORKGROUP_SIZE = 64;
const MAX_KEPT = 4;
const MAX_REDUCED = 3;
/** Groups at least this long use a workgroup each, unless they are many and short enough for one invocation. */
const COOPERATIVE_MIN_LENGTH = 256;
const COOPERATIVE_MAX_GROUPS = 4096;

/**
 * Bindings: x, scale, bias, output, mean, inv_std, params. Variant 0: an invocation per group;
 * 1: a workgroup per group.
 */
export function groupNormVariants(type: StorageType, hasScale: boolean, hasBias: boolean): KernelVariant[] {
  return [false, true].map((cooperative) => ({
    shader: 'norm/group_norm.wgsl',
    preludes: ['common/index.wgsl'],
    types: { T: type },
    constants: { COOPERATIVE: Number(cooperative), HAS_SCALE: Number(hasScale), HAS_BIAS: Number(hasBias), WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'storage', 'storage', 'uniform'] as const,
  }));
}

interface Dim { size: number; x: number; scale: number; bias: number }

/**
 * Neighbouring dims of one class (kept or reduced) merged where all three strides stay
 * contiguous; size-1 dims dropped.
 */
function layout(problem: NormalizationProblem): { kept: Dim[]; reduced: Dim[] } {
  const { shape } = problem;
  const strides = [stridesOf(shape), ...[problem.scaleShape, problem.biasShape].map((operand) => (operand ? broadcastStrides(operand, shape) : shape.map(() => 0)))];
  const reducedAxes = new Set(problem.axes);
  const kept: Dim[] = [];
  const reduced: Dim[] = [];
  let previous: { dim: Dim; reduced: boolean } | undefined;
  shape.forEach((size, axis) => {
    if (size === 1) return;
    const dim = { size, x: strides[0][axis], scale: strides[1][axis], bias: strides[2][axis] };
    const isReduced = reducedAxes.has(axis);
    const last = previous?.dim;
    if (last && previous!.reduced === isReduced && (['x', 'scale', 'bias'] as const).every((key) => last[key] === dim[key] * size)) {
      last.size *= size;
      last.x = dim.x;
      last.scale = dim.scale;
      last.bias = dim.bias;
      return;
    }
    (isReduced ? reduced : kept).push(dim);
    previous = { dim, reduced: isReduced };
  });
  return { kept, reduced };
}

/** Groups (one per kept index, row-major) and the dispatch normalizing each. */
export function groupNormDispatch(problem: NormalizationProblem, maxPerDimension: number, maxRowLength: number): Dispatch & { groups: number } {
  const { kept, reduced } = layout(problem);
  if (kept.length > MAX_KEPT) throw new RangeError(`a normalization keeping ${kept.length} separate dims (at most ${MAX_KEPT} are supported)`);
  if (reduced.length > MAX_REDUCED) throw new RangeError(`a normalization over ${reduced.length} separate dims (at most ${MAX_REDUCED} are supported)`);
  const groups = product(kept.map((dim) => dim.size));
  const reduceCount = product(reduced.map((dim) => dim.size));
  const cooperative = reduceCount >= COOPERATIVE_MIN_LENGTH && (groups <= COOPERATIVE_MAX_GROUPS || reduceCount > maxRowLength);
  const innermostFirst = [...reduced].reverse();
  const field = (dims: Dim[], key: keyof Dim) => dims.map((dim) => dim[key]);
  const uniforms = new UniformWriter(176).u32(groups).u32(kept.length).u32(reduceCount).u32(Number(problem.center))
    .f32(problem.epsilon).u32(Number(problem.epsilonOutside)).u32(0).u32(0)
    .vec4u32(field(kept, 'size'), 1).vec4f32(kept.map((dim) => reciprocal(dim.size)), 1)
    .vec4u32(field(kept, 'x')).vec4u32(field(kept, 'scale')).vec4u32(field(kept, 'bias'))
    .vec4u32(field(innermostFirst, 'size'), 1).vec4u32(field(innermostFirst, 'x')).vec4u32(field(innermostFirst, 'scale')).vec4u32(field(innermostFirst, 'bias'))
    .finish();
  const workgroupCount = cooperative ? groups : Math.ceil(groups / WORKGROUP_SIZE);
  return {
    groups,
    variant: cooperative ? 1 : 0,
    workgroups: groups === 0 ? [0, 1, 1] : linearGrid(workgroupCount, maxPerDimension),
    uniforms,
  };
}
