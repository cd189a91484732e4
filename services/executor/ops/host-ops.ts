/**
 * Operators the host computes: Hardmax, Compress (its output's length is the count of true
 * conditions), EyeLike (its output depends only on the input's shape), ReverseSequence and Det
 * (an LU factorization per matrix, in float64). With inputs computed on the GPU the run reads
 * them back first (compiler/segments.ts), as for Unique; the outputs are host values, uploaded
 * where a GPU step reads them.
 */
import { invalidArgument } from '../../domain/errors.ts';
import { datatypeOfOnnxCode } from '../../onnx/datatypes.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { kindOf, normalizeAxis, numberView, product } from '../tensor/index.ts';
import { attributeOf, intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { CpuContext, OperatorSpec } from './contract.ts';
import { elementOf, filled, pick, reserve, setElement, store } from './cpu-indexing.ts';
import { requiredValue } from './parameters.ts';
import { sameAsInput } from './spec-parts.ts';

// Hardmax

/**
 * 1 at the first largest element of each row, 0 elsewhere. Before opset 13 a row is everything
 * from `axis` on (the input coerced to 2-D, default axis 1); from 13 it is the one dim `axis`
 * (default -1). A NaN counts as the largest, as numpy's argmax takes it.
 */
function cpuHardmax(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const { shape } = input;
  const singleAxis = context.opset >= 13;
  const axis = normalizeAxis(intAttribute(context.node, 'axis', singleAxis ? -1 : 1), Math.max(shape.length, 1));
  const outer = product(shape.slice(0, axis));
  const length = singleAxis ? shape[axis] ?? 1 : product(shape.slice(axis));
  const inner = singleAxis ? product(shape.slice(axis + 1)) : 1;
  reserve(context, shape, input.datatype);
  const out = filled(input.datatype, shape, 0);
  const one = elementOf(input.datatype, 1);
  const values = numberView(input);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * length * inner + i;
      let best = 0;
      for (let position = 1; position < length; position++) {
        const value = values[base + position * inner];
        const bestValue = values[base + best * inner];
        if (!Number.isNaN(bestValue) && (value > bestValue || Number.isNaN(value))) best = position;
      }
      if (length > 0) setElement(out.data, base + best * inner, one);
    }
  }
  return [out];
}

export const hardmaxSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [1, 1],
  types(context) {
    const type = context.inputTypes[0];
    if (type && kindOf(type) !== 'float') throw unsupported(context.node, `${type} input (floats only)`);
    return sameAsInput(context);
  },
  cpu: cpuHardmax,
};

// Compress

/** The slices along `axis` (or the elements of the flattened input, without one) whose condition is true. */
function cpuCompress(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const condition = numberView(requiredValue(context, 1));
  const hasAxis = attributeOf(context.node, 'axis') !== undefined;
  const shape = hasAxis ? input.shape : [product(input.shape)];
  const axis = hasAxis ? normalizeAxis(intAttribute(context.node, 'axis', 0), shape.length) : 0;
  const length = shape[axis];
  const kept: number[] = [];
  for (let index = 0; index < condition.length; index++) {
    if (condition[index] === 0) continue;
    if (index >= length) throw invalidArgument(`Compress condition is true at ${index}, past the ${length} slices along axis ${axis}`);
    kept.push(index);
  }
  const outer = product(shape.slice(0, axis));
  const inner = product(shape.slice(axis + 1));
  const outShape = shape.map((dim, index) => (index === axis ? kept.length : dim));
  reserve(context, outShape, input.datatype);
  const picks = new Float64Array(outer * kept.length * inner);
  let next = 0;
  for (let o = 0; o < outer; o++) {
    for (const slice of kept) for (let i = 0; i < inner; i++) picks[next++] = (o * length + slice) * inner + i;
  }
  return [pick(input, outShape, picks)];
}

export const compressSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [2, 2],
  types(context) {
    const conditionType = context.inputTypes[1];
    if (conditionType && conditionType !== 'BOOL') throw invalidNode(context.node, `its condition must be BOOL, got ${conditionType}`);
    return sameAsInput(context);
  },
  cpu: cpuCompress,
};

// EyeLike

function cpuEyeLike(context: CpuContext): HostTensor[] {
  const shape = context.inputs[0]!.shape;
  if (shape.length !== 2) throw invalidArgument(`EyeLike input has shape [${shape}]; it must be 2-D`);
  const datatype = context.outputTypes[0];
  const k = intAttribute(context.node, 'k', 0);
  reserve(context, shape, datatype);
  const out = filled(datatype, shape, 0);
  const one = elementOf(datatype, 1);
  const [rows, columns] = shape;
  for (let row = Math.max(0, -k); row < rows && row + k < columns; row++) setElement(out.data, row * columns + row + k, one);
  return [out];
}

export const eyeLikeSpec: OperatorSpec = {
  attributes: ['dtype', 'k'],
  inputs: [1, 1],
  shapeOnly: true,
  types({ node, inputTypes }) {
    const dtype = attributeOf(node, 'dtype');
    return [dtype ? datatypeOfOnnxCode(intAttribute(node, 'dtype', 1)) : inputTypes[0] ?? 'FP32'];
  },
  cpu: cpuEyeLike,
};

// ReverseSequence

/** Reverses the first sequence_lens[b] steps along time_axis of each batch entry b. */
function cpuReverseSequence(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const lengths = numberView(requiredValue(context, 1));
  const { shape } = input;
  const batchAxis = intAttribute(context.node, 'batch_axis', 1);
  const timeAxis = intAttribute(context.node, 'time_axis', 0);
  if (shape.length < 2) throw invalidArgument(`ReverseSequence input has shape [${shape}]; it needs at least 2 dims`);
  if (lengths.length !== shape[batchAxis]) {
    throw invalidArgument(`ReverseSequence sequence_lens has ${lengths.length} elements; the batch axis has ${shape[batchAxis]}`);
  }
  const steps = shape[timeAxis];
  for (const length of Array.from(lengths)) {
    if (!Number.isInteger(length) || length < 0 || length > steps) throw invalidArgument(`ReverseSequence length ${length} is not in [0, ${steps}]`);
  }
  const inner = product(shape.slice(2));
  reserve(context, shape, input.datatype);
  const picks = new Float64Array(product(shape));
  const [first, second] = [shape[0], shape[1]];
  for (let a = 0; a < first; a++) {
    for (let b = 0; b < second; b++) {
      const [batch, time] = batchAxis === 0 ? [a, b] : [b, a];
      const source = time < lengths[batch] ? lengths[batch] - 1 - time : time;
      const [sourceA, sourceB] = batchAxis === 0 ? [a, source] : [source, b];
      for (let i = 0; i < inner; i++) picks[(a * second + b) * inner + i] = (sourceA * second + sourceB) * inner + i;
    }
  }
  return [pick(input, shape, picks)];
}

export const reverseSequenceSpec: OperatorSpec = {
  attributes: ['batch_axis', 'time_axis'],
  inputs: [2, 2],
  types: sameAsInput,
  validate(node) {
    const batchAxis = intAttribute(node, 'batch_axis', 1);
    const timeAxis = intAttribute(node, 'time_axis', 0);
    if (![0, 1].includes(batchAxis) || ![0, 1].includes(timeAxis) || batchAxis === timeAxis) {
      throw invalidNode(node, `batch_axis ${batchAxis} and time_axis ${timeAxis} must be 0 and 1, one each`);
    }
  },
  cpu: cpuReverseSequence,
};

// Det

/** The determinant of the m x m matrix at `offset` of `values`: LU with partial pivoting, in float64. */
function determinant(values: ArrayLike<number>, offset: number, m: number): number {
  const a = Float64Array.from({ length: m * m }, (_, index) => values[offset + index]);
  let det = 1;
  for (let column = 0; column < m; column++) {
    let pivot = column;
    for (let row = column + 1; row < m; row++) if (Math.abs(a[row * m + column]) > Math.abs(a[pivot * m + column])) pivot = row;
    if (a[pivot * m + column] === 0) return 0;
    if (pivot !== column) {
      for (let k = 0; k < m; k++) [a[column * m + k], a[pivot * m + k]] = [a[pivot * m + k], a[column * m + k]];
      det = -det;
    }
    const diagonal = a[column * m + column];
    det *= diagonal;
    for (let row = column + 1; row < m; row++) {
      const factor = a[row * m + column] / diagonal;
      for (let k = column + 1; k < m; k++) a[row * m + k] -= factor * a[column * m + k];
    }
  }
  return det;
}

function cpuDet(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const { shape } = input;
  const m = shape[shape.length - 1];
  if (shape.length < 2 || shape[shape.length - 2] !== m) throw invalidArgument(`Det input has shape [${shape}]; it needs square matrices in its last 2 dims`);
  const outShape = shape.slice(0, -2);
  reserve(context, outShape, input.datatype);
  const values = numberView(input);
  const dets = new Float64Array(product(outShape));
  for (let index = 0; index < dets.length; index++) dets[index] = determinant(values, index * m * m, m);
  return [store(input.datatype, outShape, dets)];
}

export const detSpec: OperatorSpec = {
  attributes: [],
  inputs: [1, 1],
  types(context) {
    const type = context.inputTypes[0];
    if (type && kindOf(type) !== 'float') throw unsupported(context.node, `${type} input (floats only)`);
    return sameAsInput(context);
  },
  cpu: cpuDet,
};
