/**
 * Gathers by index tensors: GatherElements (one index per output element along an axis),
 * GatherND (index tuples picking slices, with batch dims) and OneHot, each a GPU kernel
 * (shaders/indexing/) and a CPU implementation for constants and shape computations. Both paths
 * share one shape rule per operator; indices out of range are INVALID_ARGUMENT on the CPU and
 * clamped on the GPU (where checking would cost a read-back).
 */
import type { HostTensor } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import {
  gatherElementsDispatch, gatherElementsVariant, gatherNdDispatch, gatherNdVariant, oneHotDispatch, oneHotVariant,
} from '../kernels/indexing.ts';
import { kindOf, normalizeAxis, numberView, product, showShape, stridesOf, toNumbers, typedArrayFor } from '../tensor/index.ts';
import { intAttribute, unsupported } from './attributes.ts';
import type { CpuContext, LoadContext, OperatorSpec } from './contract.ts';
import { elementAt, pick, reserve, setElement } from './cpu-indexing.ts';
import { parameterValue, required, requiredValue } from './parameters.ts';
import { inputStorage, io, sameAsInput } from './spec-parts.ts';

/** FAILED_PRECONDITION unless input `index` holds integers. */
function requireIntegerIndices(context: LoadContext, index: number): void {
  const datatype = context.inputs[index]?.datatype;
  if (!datatype || kindOf(datatype) !== 'int') throw unsupported(context.node, `${datatype ?? 'untyped'} indices (integers only)`);
}

/** An index into a dim of `length`, negative counting from the end; INVALID_ARGUMENT when out of range. */
function wrapIndex(raw: number, length: number, what: string): number {
  const index = raw < 0 ? raw + length : raw;
  if (!(index >= 0 && index < length)) throw invalidArgument(`${what} index ${raw} is out of range for a dim of ${length}`);
  return index;
}

// GatherElements

function gatherElementsAxis(dataShape: readonly number[], indicesShape: readonly number[], axisAttribute: number): number {
  if (indicesShape.length !== dataShape.length) {
    throw invalidArgument(`GatherElements indices ${showShape(indicesShape)} must have the rank of the data ${showShape(dataShape)}`);
  }
  const axis = normalizeAxis(axisAttribute, dataShape.length);
  if (indicesShape.some((dim, index) => index !== axis && dim > dataShape[index])) {
    throw invalidArgument(`GatherElements indices ${showShape(indicesShape)} exceed the data ${showShape(dataShape)} off the axis ${axis}`);
  }
  return axis;
}

function cpuGatherElements(context: CpuContext): HostTensor[] {
  const data = requiredValue(context, 0);
  const indices = requiredValue(context, 1);
  const axis = gatherElementsAxis(data.shape, indices.shape, intAttribute(context.node, 'axis', 0));
  reserve(context, indices.shape, data.datatype);
  const dataStrides = stridesOf(data.shape);
  const indexValues = numberView(indices);
  const picks = new Float64Array(indexValues.length);
  const coords = new Array<number>(indices.shape.length).fill(0);
  for (let index = 0; index < picks.length; index++) {
    let offset = 0;
    coords.forEach((coord, dim) => {
      offset += (dim === axis ? wrapIndex(indexValues[index], data.shape[axis], 'GatherElements') : coord) * dataStrides[dim];
    });
    picks[index] = offset;
    for (let dim = coords.length - 1; dim >= 0; dim--) {
      if (++coords[dim] < indices.shape[dim]) break;
      coords[dim] = 0;
    }
  }
  return [pick(data, indices.shape, picks)];
}

export const gatherElementsSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [2, 2],
  types: sameAsInput,
  cpu: cpuGatherElements,
  device(context) {
    requireIntegerIndices(context, 1);
    const axisAttribute = intAttribute(context.node, 'axis', 0);
    return {
      kind: 'kernel',
      variants: [gatherElementsVariant(inputStorage(context, 0))],
      plan(inputs, maxPerDimension) {
        const dataShape = required(inputs, 0).shape;
        const indicesShape = required(inputs, 1).shape;
        const axis = gatherElementsAxis(dataShape, indicesShape, axisAttribute);
        return { outputShapes: [[...indicesShape]], dispatches: [{ ...gatherElementsDispatch(dataShape, indicesShape, axis, maxPerDimension), bindings: io(2) }] };
      },
    };
  },
};

// GatherND

/** GatherND's geometry: the output shape and the walk over tuples and slices. */
export function gatherNdProblem(dataShape: readonly number[], indicesShape: readonly number[], batchDims: number) {
  const k = indicesShape[indicesShape.length - 1];
  if (indicesShape.length < 1 || k === undefined) throw invalidArgument('GatherND indices need rank >= 1');
  if (batchDims < 0 || batchDims >= Math.min(dataShape.length, indicesShape.length)) {
    throw invalidArgument(`GatherND batch_dims ${batchDims} must be below the ranks of data ${showShape(dataShape)} and indices ${showShape(indicesShape)}`);
  }
  if (dataShape.slice(0, batchDims).some((dim, index) => dim !== indicesShape[index])) {
    throw invalidArgument(`GatherND data ${showShape(dataShape)} and indices ${showShape(indicesShape)} differ in their ${batchDims} batch dims`);
  }
  if (k < 1 || batchDims + k > dataShape.length) {
    throw invalidArgument(`GatherND index tuples of ${k} do not fit data ${showShape(dataShape)} after ${batchDims} batch dims`);
  }
  const strides = stridesOf(dataShape);
  return {
    outShape: [...indicesShape.slice(0, -1), ...dataShape.slice(batchDims + k)],
    tuples: product(indicesShape.slice(0, -1)),
    tuplesPerBatch: product(indicesShape.slice(batchDims, -1)),
    sliceSize: product(dataShape.slice(batchDims + k)),
    batchStride: product(dataShape.slice(batchDims)),
    dims: dataShape.slice(batchDims, batchDims + k),
    strides: strides.slice(batchDims, batchDims + k),
  };
}

function cpuGatherNd(context: CpuContext): HostTensor[] {
  const data = requiredValue(context, 0);
  const indices = requiredValue(context, 1);
  const problem = gatherNdProblem(data.shape, indices.shape, intAttribute(context.node, 'batch_dims', 0));
  reserve(context, problem.outShape, data.datatype);
  const indexValues = numberView(indices);
  const k = problem.dims.length;
  const picks = new Float64Array(problem.tuples * problem.sliceSize);
  for (let tuple = 0; tuple < problem.tuples; tuple++) {
    let offset = Math.floor(tuple / Math.max(problem.tuplesPerBatch, 1)) * problem.batchStride;
    for (let j = 0; j < k; j++) offset += wrapIndex(indexValues[tuple * k + j], problem.dims[j], 'GatherND') * problem.strides[j];
    for (let s = 0; s < problem.sliceSize; s++) picks[tuple * problem.sliceSize + s] = offset + s;
  }
  return [pick(data, problem.outShape, picks)];
}

export const gatherNdSpec: OperatorSpec = {
  attributes: ['batch_dims'],
  inputs: [2, 2],
  types: sameAsInput,
  cpu: cpuGatherNd,
  device(context) {
    requireIntegerIndices(context, 1);
    const batchDims = intAttribute(context.node, 'batch_dims', 0);
    return {
      kind: 'kernel',
      variants: [gatherNdVariant(inputStorage(context, 0))],
      plan(inputs, maxPerDimension) {
        const problem = gatherNdProblem(required(inputs, 0).shape, required(inputs, 1).shape, batchDims);
        return { outputShapes: [problem.outShape], dispatches: [{ ...gatherNdDispatch(problem, maxPerDimension), bindings: io(2) }] };
      },
    };
  },
};

// OneHot

/** OneHot's output shape and the [outer, depth, inner] view, for a depth read on the host. */
function oneHotProblem(indicesShape: readonly number[], depthTensor: HostTensor | undefined, axisAttribute: number) {
  if (!depthTensor) throw invalidArgument('OneHot needs its depth');
  const [depthValue] = toNumbers(depthTensor);
  const depth = Math.trunc(depthValue);
  if (toNumbers(depthTensor).length !== 1 || !(depth >= 1)) throw invalidArgument(`OneHot depth must be one value >= 1, got [${toNumbers(depthTensor)}]`);
  const axis = normalizeAxis(axisAttribute, indicesShape.length + 1);
  return {
    outShape: [...indicesShape.slice(0, axis), depth, ...indicesShape.slice(axis)],
    outer: product(indicesShape.slice(0, axis)), depth, inner: product(indicesShape.slice(axis)),
  };
}

function cpuOneHot(context: CpuContext): HostTensor[] {
  const indices = requiredValue(context, 0);
  const values = requiredValue(context, 2);
  if (product(values.shape) !== 2) throw invalidArgument(`OneHot values must hold [off, on], got ${showShape(values.shape)}`);
  const { outShape, outer, depth, inner } = oneHotProblem(indices.shape, requiredValue(context, 1), intAttribute(context.node, 'axis', -1));
  reserve(context, outShape, values.datatype);
  const indexValues = numberView(indices);
  const data = typedArrayFor(values.datatype, product(outShape));
  const [off, on] = [elementAt(values.data, 0), elementAt(values.data, 1)];
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < depth; j++) {
      for (let i = 0; i < inner; i++) {
        const raw = Math.trunc(indexValues[o * inner + i]);
        setElement(data, (o * depth + j) * inner + i, (raw < 0 ? raw + depth : raw) === j ? on : off);
      }
    }
  }
  return [{ datatype: values.datatype, shape: outShape, data }];
}

export const oneHotSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [3, 3],
  parameters: [1],
  types: ({ inputTypes }) => [inputTypes[2] ?? 'FP32'],
  cpu: cpuOneHot,
  device(context) {
    const indexType = context.inputs[0]?.datatype;
    if (!indexType || kindOf(indexType) === 'bool') throw unsupported(context.node, `${indexType ?? 'untyped'} indices`);
    const axisAttribute = intAttribute(context.node, 'axis', -1);
    return {
      kind: 'kernel',
      variants: [oneHotVariant(inputStorage(context, 0), inputStorage(context, 2))],
      plan(inputs, maxPerDimension) {
        if (product(required(inputs, 2).shape) !== 2) throw invalidArgument(`OneHot values must hold [off, on], got ${showShape(required(inputs, 2).shape)}`);
        const { outShape, outer, depth, inner } = oneHotProblem(required(inputs, 0).shape, parameterValue(inputs, 1), axisAttribute);
        return {
          outputShapes: [outShape],
          dispatches: [{ ...oneHotDispatch(outer, depth, inner, maxPerDimension), bindings: [{ input: 0 }, { input: 2 }, { output: 0 }] }],
        };
      },
    };
  },
};
