/**
 * CPU implementations of the operators that shape computations are made of (Shape, Gather,
 * Concat, Slice, Cast, arithmetic, ...). They fold constant subgraphs when a model is loaded and
 * evaluate shape-only subgraphs (Shape -> Gather -> Concat -> Reshape) once per input shape, so
 * the GPU never sees them. Tensors here are small; clarity wins over speed.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import { floatAttribute, intAttribute, intsAttribute, stringAttribute, tensorAttribute, unsupported } from './attributes.ts';
import {
  broadcastShapes, broadcastStrides, concatShape, flattenShape, gatherShape, normalizeAxis, padAmounts, product, rangeLength,
  reduceShape, reshapeShape, sliceAxes, splitSizes, squeezeShape, stridesOf, tileShape, transposeShape, unsqueezeShape,
} from './shapes.ts';
import { fromNumbers, kindOf, toNumbers } from './values.ts';

/** One input as the CPU sees it: its shape always, its values when they are known on the host. */
export interface CpuInput {
  readonly shape: readonly number[];
  readonly tensor: HostTensor | undefined;
}

export interface CpuContext {
  readonly node: NodeProto;
  readonly opset: number;
  /** Node inputs in order; undefined where omitted. */
  readonly inputs: ReadonlyArray<CpuInput | undefined>;
  /** Datatypes of the node's outputs (from type inference). */
  readonly outputTypes: readonly Datatype[];
}

export type CpuOp = (context: CpuContext) => HostTensor[];

function value(context: CpuContext, index: number): HostTensor {
  const tensor = context.inputs[index]?.tensor;
  if (!tensor) throw new Error(`input ${index} of '${context.node.name}' has no host value`);
  return tensor;
}

/** The values of an optional 1-D integer input (e.g. axes), or undefined when absent. */
export function optionalInts(context: CpuContext, index: number): number[] | undefined {
  const tensor = context.inputs[index]?.tensor;
  return tensor ? toNumbers(tensor) : undefined;
}

const same = (tensor: HostTensor, shape: readonly number[]): HostTensor => ({ ...tensor, shape: [...shape] });

/** Gathers `source` at `indices` into a new tensor of `shape` with the source's datatype. */
function pick(source: HostTensor, shape: readonly number[], indices: ArrayLike<number>): HostTensor {
  const values = toNumbers(source);
  return fromNumbers(source.datatype, shape, Array.from({ length: indices.length }, (_, index) => values[indices[index]]));
}

/** For each element of `outShape`, the flat index of the element of `shape` that broadcasts to it. */
function broadcastIndices(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = broadcastStrides(shape, outShape);
  const count = product(outShape);
  const indices = new Array<number>(count);
  const coords = new Array<number>(outShape.length).fill(0);
  for (let index = 0; index < count; index++) {
    let source = 0;
    for (let dim = 0; dim < outShape.length; dim++) source += coords[dim] * strides[dim];
    indices[index] = source;
    for (let dim = outShape.length - 1; dim >= 0; dim--) {
      if (++coords[dim] < outShape[dim]) break;
      coords[dim] = 0;
    }
  }
  return indices;
}

/** Flat source indices of a strided walk over `shape`. */
function stridedIndices(shape: readonly number[], strides: readonly number[], offset: number): number[] {
  const count = product(shape);
  const indices = new Array<number>(count);
  const coords = new Array<number>(shape.length).fill(0);
  for (let index = 0; index < count; index++) {
    let source = offset;
    for (let dim = 0; dim < shape.length; dim++) source += coords[dim] * strides[dim];
    indices[index] = source;
    for (let dim = shape.length - 1; dim >= 0; dim--) {
      if (++coords[dim] < shape[dim]) break;
      coords[dim] = 0;
    }
  }
  return indices;
}

function erf(x: number): number {
  // Abramowitz & Stegun 7.1.26 refined by a Newton step is plenty for folding constants.
  const sign = Math.sign(x);
  const z = Math.abs(x);
  const t = 1 / (1 + 0.3275911 * z);
  const y = 1 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-z * z);
  return sign * y;
}

const sigmoid = (x: number) => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));

/** Element-wise functions on numbers, by ONNX op type. */
const UNARY: Record<string, (x: number, node: NodeProto, integer: boolean) => number> = {
  Identity: (x) => x,
  Neg: (x) => -x,
  Abs: (x) => Math.abs(x),
  Sqrt: (x) => Math.sqrt(x),
  Exp: (x) => Math.exp(x),
  Log: (x) => Math.log(x),
  Reciprocal: (x) => 1 / x,
  Floor: (x) => Math.floor(x),
  Ceil: (x) => Math.ceil(x),
  Not: (x) => (x === 0 ? 1 : 0),
  Relu: (x) => Math.max(x, 0),
  Sigmoid: sigmoid,
  Tanh: (x) => Math.tanh(x),
  Erf: erf,
  Softplus: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
  HardSwish: (x) => x * Math.min(1, Math.max(0, x / 6 + 0.5)),
  LeakyRelu: (x, node) => (x >= 0 ? x : floatAttribute(node, 'alpha', 0.01) * x),
  Elu: (x, node) => (x > 0 ? x : floatAttribute(node, 'alpha', 1) * (Math.exp(x) - 1)),
  Selu: (x, node) => floatAttribute(node, 'gamma', 1.0507009873554805) * (x > 0 ? x : floatAttribute(node, 'alpha', 1.6732632423543772) * (Math.exp(x) - 1)),
  HardSigmoid: (x, node) => Math.min(1, Math.max(0, floatAttribute(node, 'alpha', 0.2) * x + floatAttribute(node, 'beta', 0.5))),
  Gelu: (x, node) => (stringAttribute(node, 'approximate', 'none') === 'tanh'
    ? 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))
    : 0.5 * x * (1 + erf(x / Math.SQRT2))),
};

function pow(x: number, y: number, integer: boolean): number {
  const result = x ** y;
  return integer ? Math.trunc(result) : result;
}

const BINARY: Record<string, (x: number, y: number, integer: boolean) => number> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y, integer) => (integer ? (y === 0 ? x : Math.trunc(x / y)) : x / y),
  Pow: pow,
  Min: (x, y) => Math.min(x, y),
  Max: (x, y) => Math.max(x, y),
  PRelu: (x, y) => (x >= 0 ? x : x * y),
  Equal: (x, y) => Number(x === y),
  Greater: (x, y) => Number(x > y),
  Less: (x, y) => Number(x < y),
  GreaterOrEqual: (x, y) => Number(x >= y),
  LessOrEqual: (x, y) => Number(x <= y),
  And: (x, y) => Number(x !== 0 && y !== 0),
  Or: (x, y) => Number(x !== 0 || y !== 0),
  Xor: (x, y) => Number((x !== 0) !== (y !== 0)),
};

/** Rounds to what the output datatype holds (f32 rounding for FP32, truncation for integers). */
function store(datatype: Datatype, shape: readonly number[], values: number[]): HostTensor {
  return fromNumbers(datatype, shape, values);
}

function unary(opType: string): CpuOp {
  return (context) => {
    const input = value(context, 0);
    const integer = kindOf(input.datatype) !== 'float';
    const fn = UNARY[opType];
    const values = toNumbers(input).map((x) => fn(x, context.node, integer));
    return [store(context.outputTypes[0], input.shape, values)];
  };
}

function binaryValues(opType: string, inputs: HostTensor[], outputType: Datatype): HostTensor {
  const integer = kindOf(inputs[0].datatype) !== 'float';
  const fn = BINARY[opType];
  let result = inputs[0];
  for (const next of inputs.slice(1)) {
    const outShape = broadcastShapes(result.shape, next.shape);
    const left = toNumbers(result);
    const right = toNumbers(next);
    const leftIndex = broadcastIndices(result.shape, outShape);
    const rightIndex = broadcastIndices(next.shape, outShape);
    const values = leftIndex.map((source, index) => fn(left[source], right[rightIndex[index]], integer));
    // Intermediate results of a variadic op keep the input type; the last one takes the output's.
    result = store(outputType, outShape, values);
  }
  return result;
}

function binary(opType: string): CpuOp {
  return (context) => {
    const inputs = context.inputs.map((_, index) => value(context, index));
    return [binaryValues(opType, inputs, context.outputTypes[0])];
  };
}

function clip(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  const low = context.inputs[1]?.tensor ? toNumbers(context.inputs[1].tensor)[0] : floatAttribute(context.node, 'min', -Infinity);
  const high = context.inputs[2]?.tensor ? toNumbers(context.inputs[2].tensor)[0] : floatAttribute(context.node, 'max', Infinity);
  return [store(context.outputTypes[0], input.shape, toNumbers(input).map((x) => Math.min(Math.max(x, low), high)))];
}

function where(context: CpuContext): HostTensor[] {
  const [condition, x, y] = [0, 1, 2].map((index) => value(context, index));
  const outShape = broadcastShapes(condition.shape, x.shape, y.shape);
  const [c, xs, ys] = [condition, x, y].map(toNumbers);
  const [ci, xi, yi] = [condition, x, y].map((tensor) => broadcastIndices(tensor.shape, outShape));
  return [store(context.outputTypes[0], outShape, ci.map((source, index) => (c[source] !== 0 ? xs[xi[index]] : ys[yi[index]])))];
}

function cast(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  return [store(context.outputTypes[0], input.shape, toNumbers(input))];
}

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

/** Reshape's target: the `shape` attribute (opset < 5) or the second input. */
export function reshapeTarget(context: { node: NodeProto; inputs: ReadonlyArray<{ tensor?: HostTensor } | undefined> }): number[] {
  const attribute = intsAttribute(context.node, 'shape');
  if (attribute) return attribute;
  const tensor = context.inputs[1]?.tensor;
  if (!tensor) throw unsupported(context.node, 'a shape input that is not known before the GPU runs');
  return toNumbers(tensor);
}

function reshape(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  return [same(input, reshapeShape(input.shape, reshapeTarget(context), intAttribute(context.node, 'allowzero', 0) === 1))];
}

function flatten(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  return [same(input, flattenShape(input.shape, intAttribute(context.node, 'axis', 1)))];
}

/** Squeeze / Unsqueeze axes: the attribute before opset 13, the second input from 13. */
export function axesOf(context: { node: NodeProto; opset: number; inputs: ReadonlyArray<{ tensor?: HostTensor } | undefined> }, inputIndex = 1, attributeFrom = 13): number[] | undefined {
  if (context.opset < attributeFrom) return intsAttribute(context.node, 'axes');
  const tensor = context.inputs[inputIndex]?.tensor;
  return tensor ? toNumbers(tensor) : intsAttribute(context.node, 'axes');
}

function squeeze(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  return [same(input, squeezeShape(input.shape, axesOf(context)))];
}

function unsqueeze(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  const axes = axesOf(context);
  if (!axes) throw invalidArgument('Unsqueeze needs axes');
  return [same(input, unsqueezeShape(input.shape, axes))];
}

function concat(context: CpuContext): HostTensor[] {
  const inputs = context.inputs.map((_, index) => value(context, index));
  const { outShape, axis } = concatShape(inputs.map((input) => input.shape), intAttribute(context.node, 'axis', 0));
  const outer = product(outShape.slice(0, axis));
  const inner = product(outShape.slice(axis + 1));
  // Element by element: spreading a block into push() overflows the stack for blocks of more
  // than ~100k values (large initializers folded at load).
  const values = new Array<number>(product(outShape));
  const sources = inputs.map(toNumbers);
  let next = 0;
  for (let o = 0; o < outer; o++) {
    inputs.forEach((input, index) => {
      const block = input.shape[axis] * inner;
      const source = sources[index];
      for (let offset = o * block; offset < (o + 1) * block; offset++) values[next++] = source[offset];
    });
  }
  return [store(context.outputTypes[0], outShape, values)];
}

/** Split sizes from the attribute (opset < 13), the second input, or num_outputs (opset 18). */
export function splitOf(context: { node: NodeProto; opset: number; inputs: ReadonlyArray<{ tensor?: HostTensor } | undefined> }): number[] | undefined {
  if (context.opset < 13) return intsAttribute(context.node, 'split');
  const tensor = context.inputs[1]?.tensor;
  return tensor ? toNumbers(tensor) : undefined;
}

function split(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  const axis = normalizeAxis(intAttribute(context.node, 'axis', 0), input.shape.length);
  const sizes = splitSizes(input.shape[axis], context.node.output.length, splitOf(context));
  const strides = stridesOf(input.shape);
  let start = 0;
  return sizes.map((size) => {
    const shape = [...input.shape];
    shape[axis] = size;
    const result = pick(input, shape, stridedIndices(shape, strides, start * strides[axis]));
    start += size;
    return result;
  });
}

/** Slice parameters: attributes before opset 10, inputs 1..4 from 10. */
export function sliceParameters(context: { node: NodeProto; opset: number; inputs: ReadonlyArray<{ tensor?: HostTensor } | undefined> }) {
  if (context.opset < 10) {
    return {
      starts: intsAttribute(context.node, 'starts') ?? [],
      ends: intsAttribute(context.node, 'ends') ?? [],
      axes: intsAttribute(context.node, 'axes'),
      steps: undefined,
    };
  }
  const ints = (index: number) => {
    const tensor = context.inputs[index]?.tensor;
    return tensor ? toNumbers(tensor) : undefined;
  };
  return { starts: ints(1) ?? [], ends: ints(2) ?? [], axes: ints(3), steps: ints(4) };
}

function slice(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  const { starts, ends, axes, steps } = sliceParameters(context);
  const sliced = sliceAxes(input.shape, starts, ends, axes, steps);
  const strides = stridesOf(input.shape);
  const offset = sliced.reduce((total, axis, dim) => total + axis.start * strides[dim], 0);
  const shape = sliced.map((axis) => axis.count);
  return [pick(input, shape, stridedIndices(shape, sliced.map((axis, dim) => axis.step * strides[dim]), product(shape) === 0 ? 0 : offset))];
}

function gather(context: CpuContext): HostTensor[] {
  const data = value(context, 0);
  const indices = value(context, 1);
  const { outShape, axis } = gatherShape(data.shape, indices.shape, intAttribute(context.node, 'axis', 0));
  const outer = product(data.shape.slice(0, axis));
  const inner = product(data.shape.slice(axis + 1));
  const axisLength = data.shape[axis];
  const picks: number[] = [];
  const indexValues = toNumbers(indices);
  for (let o = 0; o < outer; o++) {
    for (const raw of indexValues) {
      const k = raw < 0 ? raw + axisLength : raw;
      if (k < 0 || k >= axisLength) throw invalidArgument(`Gather index ${raw} is out of range for an axis of ${axisLength}`);
      for (let i = 0; i < inner; i++) picks.push((o * axisLength + k) * inner + i);
    }
  }
  return [pick(data, outShape, picks)];
}

function transpose(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  const { outShape, perm } = transposeShape(input.shape, intsAttribute(context.node, 'perm'));
  const strides = stridesOf(input.shape);
  return [pick(input, outShape, stridedIndices(outShape, perm.map((axis) => strides[axis]), 0))];
}

function expand(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  const outShape = broadcastShapes(input.shape, toNumbers(value(context, 1)));
  return [pick(input, outShape, broadcastIndices(input.shape, outShape))];
}

function tile(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  const outShape = tileShape(input.shape, toNumbers(value(context, 1)));
  const strides = stridesOf(input.shape);
  const indices = stridedIndices(outShape, outShape.map(() => 0), 0).map((_, index) => {
    let rest = index;
    let source = 0;
    for (let dim = outShape.length - 1; dim >= 0; dim--) {
      const coord = rest % outShape[dim];
      rest = Math.floor(rest / outShape[dim]);
      source += (coord % input.shape[dim]) * strides[dim];
    }
    return source;
  });
  return [pick(input, outShape, indices)];
}

/** Pad parameters: attributes before opset 11, inputs from 11 (axes from 18). */
export function padParameters(context: { node: NodeProto; opset: number; inputs: ReadonlyArray<{ tensor?: HostTensor } | undefined> }) {
  if (context.opset < 11) {
    return { pads: intsAttribute(context.node, 'pads') ?? [], value: floatAttribute(context.node, 'value', 0), axes: undefined };
  }
  const pads = context.inputs[1]?.tensor;
  if (!pads) throw unsupported(context.node, 'pads that are not known before the GPU runs');
  const constant = context.inputs[2]?.tensor;
  const axes = context.inputs[3]?.tensor;
  return { pads: toNumbers(pads), value: constant ? toNumbers(constant)[0] ?? 0 : 0, axes: axes ? toNumbers(axes) : undefined };
}

function pad(context: CpuContext): HostTensor[] {
  const input = value(context, 0);
  const { pads, value: fill, axes } = padParameters(context);
  const mode = stringAttribute(context.node, 'mode', 'constant');
  const { begin, end, outShape } = padAmounts(input.shape, pads, axes);
  const values = toNumbers(input);
  const strides = stridesOf(input.shape);
  const out = stridedIndices(outShape, outShape.map(() => 0), 0).map((_, index) => {
    let rest = index;
    let source = 0;
    for (let dim = outShape.length - 1; dim >= 0; dim--) {
      const n = input.shape[dim];
      let c = (rest % outShape[dim]) - begin[dim];
      rest = Math.floor(rest / outShape[dim]);
      if (c < 0 || c >= n) {
        if (mode === 'constant') return fill;
        if (mode === 'edge') c = Math.min(Math.max(c, 0), n - 1);
        else if (mode === 'wrap') {
          // Round what negative pads leave of the axis, as onnxruntime does.
          const low = Math.max(-begin[dim], 0);
          const span = Math.max(n - low - Math.max(-end[dim], 0), 1);
          c = low + ((((c - low) % span) + span) % span);
        }
        else {
          const period = Math.max(2 * (n - 1), 1);
          c = ((c % period) + period) % period;
          if (c >= n) c = period - c;
        }
      }
      source += c * strides[dim];
    }
    return values[source];
  });
  return [store(input.datatype, outShape, out)];
}

function constantOfShape(context: CpuContext): HostTensor[] {
  const shape = toNumbers(value(context, 0));
  const fill = tensorAttribute(context.node, 'value');
  const fillValue = fill ? toNumbers(fill)[0] ?? 0 : 0;
  return [store(context.outputTypes[0], shape, new Array<number>(product(shape)).fill(fillValue))];
}

function range(context: CpuContext): HostTensor[] {
  const [start, limit, delta] = [0, 1, 2].map((index) => toNumbers(value(context, index))[0]);
  const count = rangeLength(start, limit, delta);
  return [store(context.outputTypes[0], [count], Array.from({ length: count }, (_, index) => start + index * delta))];
}

/** Reduce axes: the attribute before opset 18 (13 for ReduceSum), the second input after. */
export function reduceAxesOf(context: { node: NodeProto; opset: number; inputs: ReadonlyArray<{ tensor?: HostTensor } | undefined> }): number[] | undefined {
  const fromInput = context.node.opType === 'ReduceSum' ? 13 : 18;
  return axesOf(context, 1, fromInput);
}

function reduce(opType: string): CpuOp {
  return (context) => {
    const input = value(context, 0);
    const { outShape, axes } = reduceShape(input.shape, reduceAxesOf(context), intAttribute(context.node, 'keepdims', 1) === 1,
      intAttribute(context.node, 'noop_with_empty_axes', 0) === 1);
    const values = toNumbers(input);
    const reduced = new Set(axes);
    const keptShape = input.shape.map((dim, axis) => (reduced.has(axis) ? 1 : dim));
    const outCount = product(keptShape);
    const init = opType === 'ReduceMax' ? -Infinity : opType === 'ReduceMin' ? Infinity : opType === 'ReduceProd' ? 1 : 0;
    const acc = new Array<number>(outCount).fill(init);
    const keptStrides = stridesOf(keptShape);
    const coords = new Array<number>(input.shape.length).fill(0);
    for (let index = 0; index < values.length; index++) {
      let target = 0;
      for (let dim = 0; dim < coords.length; dim++) target += (reduced.has(dim) ? 0 : coords[dim]) * keptStrides[dim];
      const x = values[index];
      acc[target] = opType === 'ReduceMax' ? Math.max(acc[target], x) : opType === 'ReduceMin' ? Math.min(acc[target], x)
        : opType === 'ReduceProd' ? acc[target] * x : acc[target] + x;
      for (let dim = coords.length - 1; dim >= 0; dim--) {
        if (++coords[dim] < input.shape[dim]) break;
        coords[dim] = 0;
      }
    }
    const count = product(axes.map((axis) => input.shape[axis]));
    // The mean of nothing is 0, as onnxruntime computes it (the sum, not 0 / 0).
    const result = opType === 'ReduceMean' ? acc.map((sum) => (count === 0 ? 0 : sum / count)) : acc;
    return [store(context.outputTypes[0], outShape, result)];
  };
}

function identity(context: CpuContext): HostTensor[] {
  return [value(context, 0)];
}

/** Operators the CPU evaluates, by ONNX op type. */
export const CPU_OPS: ReadonlyMap<string, CpuOp> = new Map<string, CpuOp>([
  ...Object.keys(UNARY).filter((op) => op !== 'Identity').map((op) => [op, unary(op)] as [string, CpuOp]),
  ...Object.keys(BINARY).map((op) => [op, binary(op)] as [string, CpuOp]),
  ['Identity', identity],
  ['Dropout', identity],
  ['Clip', clip],
  ['Where', where],
  ['Cast', cast],
  ['Shape', shapeOp],
  ['Size', sizeOp],
  ['Reshape', reshape],
  ['Flatten', flatten],
  ['Squeeze', squeeze],
  ['Unsqueeze', unsqueeze],
  ['Concat', concat],
  ['Split', split],
  ['Slice', slice],
  ['Gather', gather],
  ['Transpose', transpose],
  ['Expand', expand],
  ['Tile', tile],
  ['Pad', pad],
  ['ConstantOfShape', constantOfShape],
  ['Range', range],
  ...['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd'].map((op) => [op, reduce(op)] as [string, CpuOp]),
]);

/** Operators whose outputs depend only on their inputs' shapes (they run on the CPU even for GPU tensors). */
export const SHAPE_OPS: ReadonlySet<string> = new Set(['Shape', 'Size']);
