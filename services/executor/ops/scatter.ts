/**
 * Scatters: ScatterElements (and its opset 9 name Scatter) and ScatterND, with reduction none,
 * add, mul (opset 16) and max, min (opset 18). On the GPU the output is first a copy of the data
 * (the copy kernel), then a scatter kernel walks the updates in their ONNX order, so repeated
 * indices combine in order; on the CPU the same walk folds constants.
 */
import type { HostTensor } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import { copyDispatch, copyVariants } from '../kernels/index.ts';
import {
  scatterElementsDispatch, scatterElementsVariant, scatterNdDispatch, scatterNdVariant, type ScatterReduction,
} from '../kernels/indexing.ts';
import { kindOf, normalizeAxis, numberView, product, showShape, stridesOf, typedArrayFor } from '../tensor/index.ts';
import { enumAttribute, intAttribute, unsupported } from './attributes.ts';
import type { CpuContext, DeviceOperator, LoadContext, OperatorSpec, PlannedKernel } from './contract.ts';
import { elementAt, reserve, setElement } from './cpu-indexing.ts';
import { required, requiredValue } from './parameters.ts';
import { inputStorage, sameAsInput } from './spec-parts.ts';

/** The reductions each opset defines: add and mul from 16, max and min from 18. */
function reductionOf(node: LoadContext['node'], opset: number): ScatterReduction {
  const allowed: ScatterReduction[] = opset >= 18 ? ['none', 'add', 'mul', 'max', 'min'] : opset >= 16 ? ['none', 'add', 'mul'] : ['none'];
  return enumAttribute(node, 'reduction', allowed, 'none');
}

function combine(reduction: ScatterReduction, old: number, update: number): number {
  switch (reduction) {
    case 'add': return old + update;
    case 'mul': return old * update;
    case 'max': return Math.max(old, update);
    case 'min': return Math.min(old, update);
    default: return update;
  }
}

function wrapIndex(raw: number, length: number, what: string): number {
  const index = raw < 0 ? raw + length : raw;
  if (!(index >= 0 && index < length)) throw invalidArgument(`${what} index ${raw} is out of range for a dim of ${length}`);
  return index;
}

/** A copy of `data` whose elements the scatter rewrites, as numbers (64-bit integers stay exact only below 2^53). */
function scatterTarget(context: CpuContext, data: HostTensor) {
  reserve(context, data.shape, data.datatype);
  const out = typedArrayFor(data.datatype, product(data.shape));
  for (let index = 0; index < out.length; index++) setElement(out, index, elementAt(data.data, index));
  const numeric = data.datatype !== 'INT64' && data.datatype !== 'UINT64';
  const read = (index: number) => Number(elementAt(out, index));
  const write = (index: number, value: number) => setElement(out, index, numeric ? value : BigInt(Math.trunc(value)));
  return { tensor: { datatype: data.datatype, shape: [...data.shape], data: out } as HostTensor, read, write };
}

/** The device operator shared by both scatters: copy the data into the output, then scatter. */
function scatterOperator(context: LoadContext, scatter: DeviceOperator['variants'][number], plan: (
  inputs: Parameters<DeviceOperator['plan']>[0], maxPerDimension: number) => PlannedKernel | undefined): DeviceOperator {
  const datatype = context.inputs[0].datatype!;
  if (kindOf(datatype) === 'bool') throw unsupported(context.node, 'BOOL data');
  const indexType = context.inputs[1].datatype;
  if (!indexType || kindOf(indexType) !== 'int') throw unsupported(context.node, `${indexType ?? 'untyped'} indices (integers only)`);
  const copies = copyVariants(inputStorage(context, 0));
  return {
    kind: 'kernel',
    variants: [...copies, scatter],
    plan(inputs, maxPerDimension) {
      const shape = required(inputs, 0).shape;
      const count = product(shape);
      const dispatches: PlannedKernel[] = [];
      if (count > 0) {
        dispatches.push({ ...copyDispatch({ shape: [count], inStrides: [1], outStrides: [1], inOffset: 0, outOffset: 0 }, maxPerDimension), bindings: [{ input: 0 }, { output: 0 }] });
        const kernel = plan(inputs, maxPerDimension);
        if (kernel) dispatches.push({ ...kernel, variant: copies.length });
      }
      return { outputShapes: [[...shape]], dispatches };
    },
  };
}

// ScatterElements

function scatterElementsAxis(dataShape: readonly number[], indicesShape: readonly number[], updatesShape: readonly number[], axisAttribute: number): number {
  if (indicesShape.length !== dataShape.length || updatesShape.length !== indicesShape.length || indicesShape.some((dim, index) => dim !== updatesShape[index])) {
    throw invalidArgument(`ScatterElements needs indices ${showShape(indicesShape)} and updates ${showShape(updatesShape)} of one shape, of the rank of the data ${showShape(dataShape)}`);
  }
  const axis = normalizeAxis(axisAttribute, dataShape.length);
  if (indicesShape.some((dim, index) => index !== axis && dim > dataShape[index])) {
    throw invalidArgument(`ScatterElements indices ${showShape(indicesShape)} exceed the data ${showShape(dataShape)} off the axis ${axis}`);
  }
  return axis;
}

function cpuScatterElements(context: CpuContext): HostTensor[] {
  const [data, indices, updates] = [0, 1, 2].map((index) => requiredValue(context, index));
  const axis = scatterElementsAxis(data.shape, indices.shape, updates.shape, intAttribute(context.node, 'axis', 0));
  const reduction = context.node.opType === 'Scatter' ? 'none' : reductionOf(context.node, context.opset);
  const target = scatterTarget(context, data);
  const dataStrides = stridesOf(data.shape);
  const indexValues = numberView(indices);
  const updateValues = numberView(updates);
  const coords = new Array<number>(indices.shape.length).fill(0);
  for (let index = 0; index < indexValues.length; index++) {
    let offset = 0;
    coords.forEach((coord, dim) => {
      offset += (dim === axis ? wrapIndex(indexValues[index], data.shape[axis], 'ScatterElements') : coord) * dataStrides[dim];
    });
    target.write(offset, combine(reduction, target.read(offset), updateValues[index]));
    for (let dim = coords.length - 1; dim >= 0; dim--) {
      if (++coords[dim] < indices.shape[dim]) break;
      coords[dim] = 0;
    }
  }
  return [target.tensor];
}

/** ScatterElements, and Scatter (opsets 9 and 10, the same operator without reductions). */
export function scatterElementsSpec(opType: 'ScatterElements' | 'Scatter'): OperatorSpec {
  return {
    attributes: opType === 'Scatter' ? ['axis'] : ['axis', 'reduction'],
    inputs: [3, 3],
    types: sameAsInput,
    validate(node, opset) {
      if (opType === 'ScatterElements') reductionOf(node, opset);
    },
    cpu: cpuScatterElements,
    device(context) {
      const reduction = opType === 'Scatter' ? 'none' : reductionOf(context.node, context.opset);
      const axisAttribute = intAttribute(context.node, 'axis', 0);
      return scatterOperator(context, scatterElementsVariant(inputStorage(context, 0)), (inputs, maxPerDimension) => {
        const [dataShape, indicesShape, updatesShape] = [0, 1, 2].map((index) => required(inputs, index).shape);
        const axis = scatterElementsAxis(dataShape, indicesShape, updatesShape, axisAttribute);
        if (product(updatesShape) === 0) return undefined;
        return { ...scatterElementsDispatch(dataShape, updatesShape, axis, reduction, maxPerDimension), bindings: [{ input: 1 }, { input: 2 }, { output: 0 }] };
      });
    },
  };
}

// ScatterND

function scatterNdProblem(dataShape: readonly number[], indicesShape: readonly number[], updatesShape: readonly number[]) {
  const k = indicesShape[indicesShape.length - 1];
  if (k === undefined || k < 1 || k > dataShape.length) {
    throw invalidArgument(`ScatterND index tuples of ${k ?? 'no'} length do not fit data ${showShape(dataShape)}`);
  }
  const expected = [...indicesShape.slice(0, -1), ...dataShape.slice(k)];
  if (expected.length !== updatesShape.length || expected.some((dim, index) => dim !== updatesShape[index])) {
    throw invalidArgument(`ScatterND updates ${showShape(updatesShape)} must have shape ${showShape(expected)}`);
  }
  return { tuples: product(indicesShape.slice(0, -1)), sliceSize: product(dataShape.slice(k)), dims: dataShape.slice(0, k), strides: stridesOf(dataShape).slice(0, k) };
}

function cpuScatterNd(context: CpuContext): HostTensor[] {
  const [data, indices, updates] = [0, 1, 2].map((index) => requiredValue(context, index));
  const { tuples, sliceSize, dims, strides } = scatterNdProblem(data.shape, indices.shape, updates.shape);
  const reduction = reductionOf(context.node, context.opset);
  const target = scatterTarget(context, data);
  const indexValues = numberView(indices);
  const updateValues = numberView(updates);
  for (let tuple = 0; tuple < tuples; tuple++) {
    let offset = 0;
    dims.forEach((dim, j) => { offset += wrapIndex(indexValues[tuple * dims.length + j], dim, 'ScatterND') * strides[j]; });
    for (let s = 0; s < sliceSize; s++) target.write(offset + s, combine(reduction, target.read(offset + s), updateValues[tuple * sliceSize + s]));
  }
  return [target.tensor];
}

export const scatterNdSpec: OperatorSpec = {
  attributes: ['reduction'],
  inputs: [3, 3],
  types: sameAsInput,
  validate(node, opset) {
    reductionOf(node, opset);
  },
  cpu: cpuScatterNd,
  device(context) {
    const reduction = reductionOf(context.node, context.opset);
    return scatterOperator(context, scatterNdVariant(inputStorage(context, 0)), (inputs, maxPerDimension) => {
      const [dataShape, indicesShape, updatesShape] = [0, 1, 2].map((index) => required(inputs, index).shape);
      const { tuples, sliceSize, dims, strides } = scatterNdProblem(dataShape, indicesShape, updatesShape);
      if (tuples === 0 || sliceSize === 0) return undefined;
      return { ...scatterNdDispatch(tuples, sliceSize, dims, strides, reduction, maxPerDimension), bindings: [{ input: 1 }, { input: 2 }, { output: 0 }] };
    });
  },
};
