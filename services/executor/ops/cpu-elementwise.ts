/**
 * CPU implementations of the element-wise operators (unary functions, broadcasting binary
 * arithmetic and comparisons, Clip, Where, Cast). They fold constant subgraphs at load and
 * evaluate shape computations per plan. Outputs are reserved with the context's allocator
 * before they are allocated, and values pass through typed arrays.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { broadcastShapes, kindOf, numberView } from '../tensor/index.ts';
import { floatAttribute, stringAttribute } from './attributes.ts';
import type { CpuContext, CpuOp } from './contract.ts';
import { broadcastIndices, reserve, store } from './cpu-indexing.ts';
import { clipBound, requiredValue } from './parameters.ts';

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

/** The CPU implementation of unary operator `opType` (a key of the table above). */
export function cpuUnary(opType: string): CpuOp {
  return (context) => {
    const input = requiredValue(context, 0);
    reserve(context, input.shape, context.outputTypes[0]);
    const integer = kindOf(input.datatype) !== 'float';
    const fn = UNARY[opType];
    const values = Float64Array.from(numberView(input), (x) => fn(x, context.node, integer));
    return [store(context.outputTypes[0], input.shape, values)];
  };
}

function binaryValues(context: CpuContext, opType: string, inputs: HostTensor[], outputType: Datatype): HostTensor {
  const integer = kindOf(inputs[0].datatype) !== 'float';
  const fn = BINARY[opType];
  let result = inputs[0];
  for (const next of inputs.slice(1)) {
    const outShape = broadcastShapes(result.shape, next.shape);
    reserve(context, outShape, outputType);
    const left = numberView(result);
    const right = numberView(next);
    const leftIndex = broadcastIndices(result.shape, outShape);
    const rightIndex = broadcastIndices(next.shape, outShape);
    const values = new Float64Array(leftIndex.length);
    for (let index = 0; index < values.length; index++) values[index] = fn(left[leftIndex[index]], right[rightIndex[index]], integer);
    // Intermediate results of a variadic op keep the input type; the last one takes the output's.
    result = store(outputType, outShape, values);
  }
  return result;
}

/** The CPU implementation of binary (or variadic Min / Max) operator `opType`. */
export function cpuBinary(opType: string): CpuOp {
  return (context) => {
    const inputs = context.inputs.map((_, index) => requiredValue(context, index));
    return [binaryValues(context, opType, inputs, context.outputTypes[0])];
  };
}

export function cpuClip(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  reserve(context, input.shape, context.outputTypes[0]);
  const low = clipBound(context.node, context.inputs, 1, -Infinity) ?? -Infinity;
  const high = clipBound(context.node, context.inputs, 2, Infinity) ?? Infinity;
  return [store(context.outputTypes[0], input.shape, Float64Array.from(numberView(input), (x) => Math.min(Math.max(x, low), high)))];
}

export function cpuWhere(context: CpuContext): HostTensor[] {
  const [condition, x, y] = [0, 1, 2].map((index) => requiredValue(context, index));
  const outShape = broadcastShapes(condition.shape, x.shape, y.shape);
  reserve(context, outShape, context.outputTypes[0]);
  const [c, xs, ys] = [condition, x, y].map(numberView);
  const [ci, xi, yi] = [condition, x, y].map((tensor) => broadcastIndices(tensor.shape, outShape));
  const values = new Float64Array(ci.length);
  for (let index = 0; index < values.length; index++) values[index] = c[ci[index]] !== 0 ? xs[xi[index]] : ys[yi[index]];
  return [store(context.outputTypes[0], outShape, values)];
}

export function cpuCast(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  reserve(context, input.shape, context.outputTypes[0]);
  return [store(context.outputTypes[0], input.shape, numberView(input))];
}
