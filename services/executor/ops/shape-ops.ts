/**
 * Operators that only change how a buffer is read (Reshape, Flatten, Squeeze, Unsqueeze,
 * Identity: aliases, no dispatch) and host-only ones that compute shapes or
 * generate small tensors (Shape, Size, ConstantOfShape, Range), evaluated on the CPU.
 */
import type { HostTensor } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import {
  flattenShape, fromNumbers, product, rangeLength, reshapeShape, squeezeShape, toNumbers, unsqueezeShape,
} from '../tensor/index.ts';
import { booleanAttribute, intAttribute, invalidNode, tensorAttribute } from './attributes.ts';
import type { CpuContext, OperatorSpec } from './contract.ts';
import { cpuFlatten, cpuIdentity, cpuReshape, cpuSqueeze, cpuUnsqueeze } from './cpu-data-movement.ts';
import { filled, reserve, store } from './cpu-indexing.ts';
import { required, requiredValue, reshapeTarget, squeezeAxes } from './parameters.ts';
import { alias, sameAsInput } from './spec-parts.ts';

export const reshapeSpec: OperatorSpec = {
  // `shape` is the opset < 5 attribute form of the second input.
  attributes: ['allowzero', 'shape'],
  inputs: [1, 2],
  parameters: [1],
  types: sameAsInput,
  cpu: cpuReshape,
  device(context) {
    const { node } = context;
    // ONNX types `shape` tensor(int64); any other type is a malformed model, not a value to read.
    const shapeType = context.inputs[1]?.datatype;
    if (shapeType !== undefined && shapeType !== 'INT64') throw invalidNode(node, `its 'shape' input must be INT64, got ${shapeType}`);
    const allowZero = booleanAttribute(node, 'allowzero');
    return alias((inputs) => reshapeShape(required(inputs, 0).shape, reshapeTarget(node, inputs), allowZero));
  },
};

export const flattenSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [1, 1],
  types: sameAsInput,
  cpu: cpuFlatten,
  device(context) {
    const axis = intAttribute(context.node, 'axis', 1);
    return alias((inputs) => flattenShape(required(inputs, 0).shape, axis));
  },
};

export function squeezeLikeSpec(opType: 'Squeeze' | 'Unsqueeze'): OperatorSpec {
  return {
    attributes: ['axes'],
    inputs: [1, 2],
    parameters: [1],
    types: sameAsInput,
    cpu: opType === 'Squeeze' ? cpuSqueeze : cpuUnsqueeze,
    device(context) {
      const { node, opset } = context;
      return alias((inputs) => {
        const axes = squeezeAxes(node, opset, inputs);
        const shape = required(inputs, 0).shape;
        if (opType === 'Squeeze') return squeezeShape(shape, axes);
        if (!axes) throw invalidArgument('Unsqueeze needs axes');
        return unsqueezeShape(shape, axes);
      });
    },
  };
}

export const identitySpec: OperatorSpec = {
  attributes: [],
  inputs: [1, 1],
  types: sameAsInput,
  cpu: cpuIdentity,
  device: () => alias((inputs) => [...required(inputs, 0).shape]),
};

// Host only: shapes and generated tensors

function shapeOp(context: CpuContext): HostTensor[] {
  const shape = context.inputs[0]!.shape;
  const rank = shape.length;
  const clamp = (axis: number) => Math.min(Math.max(axis < 0 ? axis + rank : axis, 0), rank);
  const start = clamp(intAttribute(context.node, 'start', 0));
  const end = clamp(intAttribute(context.node, 'end', rank));
  const dims = shape.slice(start, Math.max(start, end));
  return [fromNumbers('INT64', [dims.length], dims)];
}

function sizeOp(context: CpuContext): HostTensor[] {
  return [fromNumbers('INT64', [], [product(context.inputs[0]!.shape)])];
}

function constantOfShape(context: CpuContext): HostTensor[] {
  const shape = toNumbers(requiredValue(context, 0));
  const fill = tensorAttribute(context.node, 'value');
  const fillValue = fill ? toNumbers(fill)[0] ?? 0 : 0;
  reserve(context, shape, context.outputTypes[0]);
  return [filled(context.outputTypes[0], shape, fillValue)];
}

function range(context: CpuContext): HostTensor[] {
  const [start, limit, delta] = [0, 1, 2].map((index) => toNumbers(requiredValue(context, index))[0]);
  if (![start, limit, delta].every(Number.isFinite)) throw invalidArgument(`Range start ${start}, limit ${limit} and delta ${delta} must be finite numbers`);
  const count = rangeLength(start, limit, delta);
  reserve(context, [count], context.outputTypes[0]);
  const values = new Float64Array(count);
  for (let index = 0; index < count; index++) values[index] = start + index * delta;
  return [store(context.outputTypes[0], [count], values)];
}

export const shapeSpec: OperatorSpec = { attributes: ['start', 'end'], inputs: [1, 1], shapeOnly: true, types: () => ['INT64'], cpu: shapeOp };
export const sizeSpec: OperatorSpec = { attributes: [], inputs: [1, 1], shapeOnly: true, types: () => ['INT64'], cpu: sizeOp };
export const constantOfShapeSpec: OperatorSpec = {
  attributes: ['value'],
  inputs: [1, 1],
  types: ({ node }) => [tensorAttribute(node, 'value')?.datatype ?? 'FP32'],
  cpu: constantOfShape,
};
export const rangeSpec: OperatorSpec = { attributes: [], inputs: [3, 3], types: sameAsInput, cpu: range };
