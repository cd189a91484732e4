/**
 * Normalizations over groups of elements, one kernel for all (shaders/norm/group_norm.wgsl):
 * InstanceNormalization, GroupNormalization (opset 18: scale and bias per group; 21: per
 * channel), MeanVarianceNormalization, RMSNormalization (opset 23), and LayerNormalization when
 * its Mean / InvStdDev outputs are named (normalization.ts runs the plain rows). Each also
 * evaluates on the CPU for constant inputs.
 */
import { invalidArgument } from '../../domain/errors.ts';
import { datatypeOfOnnxCode, type Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { groupNormDispatch, groupNormVariants, type NormalizationProblem } from '../kernels/index.ts';
import { broadcastStrides, normalizeAxis, numberView, product, stridesOf } from '../tensor/index.ts';
import { attributeOf, floatAttribute, intAttribute, intsAttribute, invalidNode } from './attributes.ts';
import type { BindingRef, CpuContext, DeviceOperator, LoadContext, NodeInput, OperatorSpec, TypeContext } from './contract.ts';
import { reserve, store, stridedIndices } from './cpu-indexing.ts';
import { required } from './parameters.ts';
import { floatStorage, rowKernelMaxLength, sameAsInput } from './spec-parts.ts';

/** A problem for concrete input shapes; `scale` / `bias` are the indices of those inputs, when present. */
interface Normalization {
  problem(inputs: ReadonlyArray<NodeInput | undefined>): NormalizationProblem;
  readonly scale?: number;
  readonly bias?: number;
  /** Outputs 1 and 2 are the mean and inverse standard deviation (LayerNormalization). */
  readonly statistics?: boolean;
}

/** Sorted distinct axes in [0, rank). */
function axesOf(axes: readonly number[], rank: number): number[] {
  const normalized = [...new Set(axes.map((axis) => normalizeAxis(axis, rank)))];
  return normalized.sort((left, right) => left - right);
}

/** Axes `from` to the last. */
const trailingAxes = (from: number, rank: number) => Array.from({ length: rank - from }, (_, index) => from + index);

function checkCount(what: string, shape: readonly number[] | undefined, expected: number): void {
  if (shape && product(shape) !== expected) throw invalidArgument(`${what} has ${product(shape)} elements, expected ${expected}`);
}

// CPU: the same problem, walked element by element

function normalizeOnCpu(problem: NormalizationProblem, x: ArrayLike<number>, scale?: ArrayLike<number>, bias?: ArrayLike<number>) {
  const { shape } = problem;
  const reduced = new Set(problem.axes);
  const keptShape = shape.map((dim, axis) => (reduced.has(axis) ? 1 : dim));
  const groupStrides = stridesOf(keptShape).map((stride, axis) => (reduced.has(axis) ? 0 : stride));
  const groupOf = stridedIndices(shape, groupStrides, 0);
  const scaleAt = problem.scaleShape ? stridedIndices(shape, broadcastStrides(problem.scaleShape, shape), 0) : undefined;
  const biasAt = problem.biasShape ? stridedIndices(shape, broadcastStrides(problem.biasShape, shape), 0) : undefined;
  const groups = product(keptShape);
  const count = product(shape) / Math.max(groups, 1);
  const mean = new Float64Array(groups);
  const invStd = new Float64Array(groups);
  if (problem.center) for (let index = 0; index < x.length; index++) mean[groupOf[index]] += x[index] / count;
  const variance = new Float64Array(groups);
  for (let index = 0; index < x.length; index++) variance[groupOf[index]] += (x[index] - mean[groupOf[index]]) ** 2 / count;
  for (let group = 0; group < groups; group++) {
    invStd[group] = problem.epsilonOutside ? 1 / (Math.sqrt(variance[group]) + problem.epsilon) : 1 / Math.sqrt(variance[group] + problem.epsilon);
  }
  const y = new Float64Array(x.length);
  for (let index = 0; index < x.length; index++) {
    const group = groupOf[index];
    y[index] = (x[index] - mean[group]) * invStd[group] * (scale ? scale[scaleAt![index]] : 1) + (bias ? bias[biasAt![index]] : 0);
  }
  return { y, mean, invStd, statisticsShape: keptShape };
}

function cpuNormalization(normalization: Normalization) {
  return (context: CpuContext): HostTensor[] => {
    const problem = normalization.problem(context.inputs);
    const values = (index: number | undefined) => {
      const tensor = index === undefined ? undefined : context.inputs[index]?.value;
      return tensor ? numberView(tensor) : undefined;
    };
    reserve(context, problem.shape, context.outputTypes[0]);
    const x = context.inputs[0]!.value!;
    const { y, mean, invStd, statisticsShape } = normalizeOnCpu(problem, numberView(x), values(normalization.scale), values(normalization.bias));
    const outputs = [store(context.outputTypes[0], x.shape, y)];
    if (normalization.statistics) {
      for (const [index, statistic] of [[1, mean], [2, invStd]] as const) {
        reserve(context, statisticsShape, context.outputTypes[index]);
        outputs.push(store(context.outputTypes[index], statisticsShape, statistic));
      }
    }
    return outputs;
  };
}

// GPU

function normalizationDevice(context: LoadContext, normalization: Normalization): DeviceOperator {
  const storage = floatStorage(context);
  const present = (index: number | undefined) => index !== undefined && Boolean(context.node.input[index]);
  const hasScale = present(normalization.scale);
  const hasBias = present(normalization.bias);
  const maxRowLength = rowKernelMaxLength(context.traits);
  return {
    kind: 'kernel',
    variants: groupNormVariants(storage, hasScale, hasBias),
    plan(inputs, maxPerDimension) {
      const problem = normalization.problem(inputs);
      const dispatch = groupNormDispatch(problem, maxPerDimension, maxRowLength);
      const scratch: number[] = [];
      // Statistics nobody named still need a buffer of their own (never the shared placeholder,
      // which the read-only scale or bias may be bound to).
      const statistic = (output: number): BindingRef =>
        (normalization.statistics && context.node.output[output] ? { output } : { scratch: scratch.push(dispatch.groups) - 1 });
      const shape = [...required(inputs, 0).shape];
      const outputShapes = [shape];
      if (normalization.statistics) {
        // LayerNormalization's problem is x itself: the statistics keep its rank, 1 on the normalized axes.
        const reduced = new Set(problem.axes);
        const statisticsShape = shape.map((dim, axis) => (reduced.has(axis) ? 1 : dim));
        outputShapes.push(statisticsShape, [...statisticsShape]);
      }
      return {
        outputShapes,
        scratch,
        dispatches: [{
          ...dispatch,
          bindings: [
            { input: 0 }, hasScale ? { input: normalization.scale! } : { placeholder: true }, hasBias ? { input: normalization.bias! } : { placeholder: true },
            { output: 0 }, statistic(1), statistic(2),
          ],
        }],
      };
    },
  };
}

function normalizationSpec(
  attributes: readonly string[], inputs: readonly [number, number], normalizationOf: (node: NodeProto, opset: number) => Normalization,
  validate?: (node: NodeProto) => void,
): OperatorSpec {
  return {
    attributes,
    inputs,
    types: sameAsInput,
    validate,
    cpu: (context) => cpuNormalization(normalizationOf(context.node, context.opset))(context),
    device: (context) => normalizationDevice(context, normalizationOf(context.node, context.opset)),
  };
}

// InstanceNormalization: [N, C, spatial...] normalized per sample and channel

const instanceNormalization = (node: NodeProto): Normalization => ({
  scale: 1,
  bias: 2,
  problem(inputs) {
    const shape = required(inputs, 0).shape;
    if (shape.length < 2) throw invalidArgument(`InstanceNormalization needs an input [N, C, ...], got [${shape}]`);
    const [batch, channels] = shape;
    checkCount('InstanceNormalization scale', required(inputs, 1).shape, channels);
    checkCount('InstanceNormalization B', required(inputs, 2).shape, channels);
    return {
      shape: [batch, channels, product(shape.slice(2))], axes: [2], scaleShape: [channels, 1], biasShape: [channels, 1],
      epsilon: floatAttribute(node, 'epsilon', 1e-5), center: true, epsilonOutside: false,
    };
  },
});

export const instanceNormSpec = normalizationSpec(['epsilon'], [3, 3], instanceNormalization);

// GroupNormalization: channels split into num_groups groups, each normalized with its spatial dims

function numGroups(node: NodeProto): number {
  if (!attributeOf(node, 'num_groups')) throw invalidNode(node, 'GroupNormalization needs the num_groups attribute');
  const groups = intAttribute(node, 'num_groups', 0);
  if (groups < 1) throw invalidNode(node, `num_groups=${groups} (it must be at least 1)`);
  return groups;
}

const groupNormalization = (node: NodeProto, opset: number): Normalization => ({
  scale: 1,
  bias: 2,
  problem(inputs) {
    const shape = required(inputs, 0).shape;
    const groups = numGroups(node);
    if (shape.length < 2) throw invalidArgument(`GroupNormalization needs an input [N, C, ...], got [${shape}]`);
    const [batch, channels] = shape;
    if (channels % groups !== 0) throw invalidArgument(`GroupNormalization of ${channels} channels into num_groups=${groups}: the channels must divide evenly`);
    const perGroup = channels / groups;
    // Opset 18 took one scale and bias per group; opset 21 one per channel.
    const perChannel = opset >= 21;
    for (const [what, index] of [['scale', 1], ['bias', 2]] as const) checkCount(`GroupNormalization ${what}`, required(inputs, index).shape, perChannel ? channels : groups);
    const affineShape = perChannel ? [groups, perGroup, 1] : [groups, 1, 1];
    return {
      shape: [batch, groups, perGroup, product(shape.slice(2))], axes: [2, 3], scaleShape: affineShape, biasShape: affineShape,
      epsilon: floatAttribute(node, 'epsilon', 1e-5), center: true, epsilonOutside: false,
    };
  },
});

export const groupNormSpec = normalizationSpec(['epsilon', 'num_groups', 'stash_type'], [3, 3], groupNormalization, (node) => { numGroups(node); });

// MeanVarianceNormalization: (x - mean) / (std + 1e-9) over `axes`, as ONNX's function defines it

const meanVarianceNormalization = (node: NodeProto): Normalization => ({
  problem(inputs) {
    const shape = required(inputs, 0).shape;
    return { shape: [...shape], axes: axesOf(intsAttribute(node, 'axes') ?? [0, 2, 3], shape.length), epsilon: 1e-9, center: true, epsilonOutside: true };
  },
});

export const meanVarianceNormSpec = normalizationSpec(['axes'], [1, 1], meanVarianceNormalization);

// RMSNormalization (opset 23): x / sqrt(mean(x^2) + epsilon) * scale over the dims from `axis`

const rmsNormalization = (node: NodeProto): Normalization => ({
  scale: 1,
  problem(inputs) {
    const shape = required(inputs, 0).shape;
    const axis = normalizeAxis(intAttribute(node, 'axis', -1), shape.length);
    return {
      shape: [...shape], axes: trailingAxes(axis, shape.length), scaleShape: required(inputs, 1).shape,
      epsilon: floatAttribute(node, 'epsilon', 1e-5), center: false, epsilonOutside: false,
    };
  },
});

export const rmsNormSpec = normalizationSpec(['axis', 'epsilon', 'stash_type'], [2, 2], rmsNormalization);

// LayerNormalization with its statistics: Mean and InvStdDev keep x's rank, 1 from `axis` on

const layerNormalization = (node: NodeProto): Normalization => ({
  scale: 1,
  bias: 2,
  statistics: true,
  problem(inputs) {
    const shape = required(inputs, 0).shape;
    const axis = normalizeAxis(intAttribute(node, 'axis', -1), shape.length);
    return {
      shape: [...shape], axes: trailingAxes(axis, shape.length), scaleShape: required(inputs, 1).shape, biasShape: inputs[2]?.shape,
      epsilon: floatAttribute(node, 'epsilon', 1e-5), center: true, epsilonOutside: false,
    };
  },
});

/** LayerNormalization's output types: Y as X, Mean and InvStdDev as stash_type (FLOAT by default). */
export function layerNormTypes({ node, inputTypes }: TypeContext): Datatype[] {
  const stash = datatypeOfOnnxCode(intAttribute(node, 'stash_type', 1));
  return [inputTypes[0] ?? 'FP32', stash, stash];
}

/** True when the node names its Mean or InvStdDev output, which only the group kernel computes. */
export const namesLayerNormStatistics = (node: NodeProto): boolean => node.output.slice(1).some(Boolean);

/** LayerNormalization computing Mean and InvStdDev too (outputs 1 and 2). */
export const layerNormWithStatistics = (context: LoadContext): DeviceOperator => normalizationDevice(context, layerNormalization(context.node));

/** LayerNormalization on the CPU, with its statistics (constant folding). */
export const cpuLayerNorm = (context: CpuContext): HostTensor[] => cpuNormalization(layerNormalization(context.node))(context);
