/**
 * Element-wise maths beyond the activation table: trigonometric and hyperbolic functions,
 * Round, Sign, the rarer activations (Mish, Shrink, ThresholdedRelu, Celu, Softsign), IsNaN /
 * IsInf, BitwiseNot (the unary kernel with shaders/common/math_ops.wgsl), Mod, BitShift and
 * BitwiseAnd / Or / Xor (the broadcasting binary kernel), and CastLike (Cast to the type of its
 * second input). Each also evaluates on the CPU for constants and shape computations.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { NodeProto } from '../../onnx/model.ts';
import {
  BINARY_OPS, binaryDispatch, binaryVariant, IDENTITY, MATH_OPS, type MathOpName, unaryDispatch, type UnaryFunction, unaryVariant,
} from '../kernels/index.ts';
import { broadcastShapes, kindOf, numberView, product } from '../tensor/index.ts';
import { attributeOf, booleanAttribute, enumAttribute, floatAttribute, invalidNode, unsupported } from './attributes.ts';
import type { CpuOp, DeviceOperator, LoadContext, OperatorSpec, TypeContext } from './contract.ts';
import { broadcastIndices, reserve, store } from './cpu-indexing.ts';
import { castSpec } from './elementwise.ts';
import { required, requiredValue } from './parameters.ts';
import { boolOutput, inputStorage, io, outputStorage, sameAsInput } from './spec-parts.ts';

type ElementKind = ReturnType<typeof kindOf>;

/** The attribute values a function reads, by name, with ONNX's defaults filled in. */
type Attributes = Readonly<Record<string, number>>;

interface MathUnary {
  readonly op: MathOpName;
  /** Input kinds ONNX defines it on. */
  readonly kinds: readonly ElementKind[];
  /** Attribute names with their defaults, in the order they fill alpha then beta. */
  readonly attributes?: Attributes;
  readonly boolOutput?: boolean;
  readonly cpu: (x: number, attributes: Attributes, datatype: Datatype) => number;
}

const FLOAT: readonly ElementKind[] = ['float'];

/** Round half to even, as ONNX's Round (Math.round rounds halves up). */
function roundHalfEven(x: number): number {
  const rounded = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : rounded;
}

const softplus = (x: number) => (x > 20 ? x : Math.log1p(Math.exp(x)));

/** Bits of each unsigned integer datatype (signed ones flip as two's complement). */
const UNSIGNED_BITS: Partial<Record<Datatype, number>> = { UINT8: 8, UINT16: 16, UINT32: 32, UINT64: 64 };

/** ~x: 2^bits - 1 - x for unsigned datatypes, -x - 1 (two's complement) for signed ones. */
function bitwiseNot(x: number, datatype: Datatype): number {
  const bits = UNSIGNED_BITS[datatype];
  return bits === undefined ? -x - 1 : 2 ** bits - 1 - x;
}

/** What BitwiseNot XORs with in i32 storage: the datatype's width of ones. */
function bitwiseNotMask(datatype: Datatype): number {
  const bits = UNSIGNED_BITS[datatype];
  return bits === 8 ? 0xff : bits === 16 ? 0xffff : -1;
}

const MATH_UNARY: Readonly<Record<string, MathUnary>> = {
  Sin: { op: 'Sin', kinds: FLOAT, cpu: Math.sin },
  Cos: { op: 'Cos', kinds: FLOAT, cpu: Math.cos },
  Tan: { op: 'Tan', kinds: FLOAT, cpu: Math.tan },
  Asin: { op: 'Asin', kinds: FLOAT, cpu: Math.asin },
  Acos: { op: 'Acos', kinds: FLOAT, cpu: Math.acos },
  Atan: { op: 'Atan', kinds: FLOAT, cpu: Math.atan },
  Sinh: { op: 'Sinh', kinds: FLOAT, cpu: Math.sinh },
  Cosh: { op: 'Cosh', kinds: FLOAT, cpu: Math.cosh },
  Asinh: { op: 'Asinh', kinds: FLOAT, cpu: Math.asinh },
  Acosh: { op: 'Acosh', kinds: FLOAT, cpu: Math.acosh },
  Atanh: { op: 'Atanh', kinds: FLOAT, cpu: Math.atanh },
  Round: { op: 'Round', kinds: FLOAT, cpu: roundHalfEven },
  Sign: { op: 'Sign', kinds: ['float', 'int'], cpu: Math.sign },
  Mish: { op: 'Mish', kinds: FLOAT, cpu: (x) => x * Math.tanh(softplus(x)) },
  // Shrink takes every numeric type: integers go through the float maths and truncate back, as
  // onnxruntime's T(x + bias) does (exact while |x| < 2^24).
  Shrink: {
    op: 'Shrink', kinds: ['float', 'int'], attributes: { lambd: 0.5, bias: 0 },
    cpu: (x, { lambd, bias }) => (x < -lambd ? x + bias : x > lambd ? x - bias : 0),
  },
  ThresholdedRelu: { op: 'ThresholdedRelu', kinds: FLOAT, attributes: { alpha: 1 }, cpu: (x, { alpha }) => (x > alpha ? x : 0) },
  Celu: {
    op: 'Celu', kinds: FLOAT, attributes: { alpha: 1 },
    cpu: (x, { alpha }) => Math.max(0, x) + Math.min(0, alpha * (Math.exp(x / alpha) - 1)),
  },
  Softsign: { op: 'Softsign', kinds: FLOAT, cpu: (x) => x / (1 + Math.abs(x)) },
  IsNaN: { op: 'IsNaN', kinds: FLOAT, boolOutput: true, cpu: (x) => Number(Number.isNaN(x)) },
  IsInf: {
    op: 'IsInf', kinds: FLOAT, boolOutput: true, attributes: { detect_negative: 1, detect_positive: 1 },
    cpu: (x, { detect_negative: negative, detect_positive: positive }) =>
      Number((x === Infinity && positive !== 0) || (x === -Infinity && negative !== 0)),
  },
  BitwiseNot: { op: 'BitwiseNot', kinds: ['int'], cpu: (x, _, datatype) => bitwiseNot(x, datatype) },
};

export const MATH_UNARY_OPS: readonly string[] = Object.keys(MATH_UNARY);

function attributeValues(node: NodeProto, entry: MathUnary): Record<string, number> {
  const values: Record<string, number> = {};
  for (const [name, fallback] of Object.entries(entry.attributes ?? {})) values[name] = floatAttribute(node, name, fallback);
  return values;
}

/** FAILED_PRECONDITION unless input `index` is of a kind the operator is defined on. */
function checkKind(context: LoadContext, kinds: readonly ElementKind[], index = 0): Datatype {
  const datatype = context.inputs[index]?.datatype;
  if (!datatype || !kinds.includes(kindOf(datatype))) throw unsupported(context.node, `${datatype ?? 'untyped'} input`);
  return datatype;
}

export function mathUnarySpec(opType: string): OperatorSpec {
  const entry = MATH_UNARY[opType];
  return {
    attributes: Object.keys(entry.attributes ?? {}),
    inputs: [1, 1],
    types: entry.boolOutput ? boolOutput : sameAsInput,
    validate(node) {
      if (opType === 'Celu' && floatAttribute(node, 'alpha', 1) === 0) throw invalidNode(node, 'Celu needs a non-zero alpha');
      if (opType === 'IsInf') for (const name of ['detect_negative', 'detect_positive']) booleanAttribute(node, name, true);
    },
    cpu(context) {
      const input = requiredValue(context, 0);
      reserve(context, input.shape, context.outputTypes[0]);
      const attributes = attributeValues(context.node, entry);
      const values = Float64Array.from(numberView(input), (x) => entry.cpu(x, attributes, input.datatype));
      return [store(context.outputTypes[0], input.shape, values)];
    },
    device(context) {
      const datatype = checkKind(context, entry.kinds);
      const [alpha = 0, beta = 0] = Object.values(attributeValues(context.node, entry));
      const fn: UnaryFunction = { op: MATH_OPS[entry.op], alpha: opType === 'BitwiseNot' ? bitwiseNotMask(datatype) : alpha, beta };
      const mode = kindOf(datatype) === 'float' || opType === 'Shrink' ? 'float' : 'integer';
      return {
        kind: 'kernel',
        variants: [unaryVariant(inputStorage(context, 0), outputStorage(context), mode)],
        plan(inputs, maxPerDimension) {
          const shape = [...required(inputs, 0).shape];
          return { outputShapes: [shape], dispatches: [{ ...unaryDispatch(product(shape), fn, maxPerDimension), bindings: io(1) }] };
        },
      };
    },
  };
}

// Binary: Mod, BitShift, BitwiseAnd / Or / Xor

/** A broadcasting CPU implementation of `fn` (which sees the input datatype). */
function cpuBroadcast(fn: (x: number, y: number, node: NodeProto, datatype: Datatype) => number): CpuOp {
  return (context) => {
    const [a, b] = [0, 1].map((index) => requiredValue(context, index));
    const outShape = broadcastShapes(a.shape, b.shape);
    reserve(context, outShape, context.outputTypes[0]);
    const [left, right] = [numberView(a), numberView(b)];
    const [leftIndex, rightIndex] = [broadcastIndices(a.shape, outShape), broadcastIndices(b.shape, outShape)];
    const values = new Float64Array(leftIndex.length);
    for (let index = 0; index < values.length; index++) values[index] = fn(left[leftIndex[index]], right[rightIndex[index]], context.node, a.datatype);
    return [store(context.outputTypes[0], outShape, values)];
  };
}

/** The binary kernel on both inputs (their storage types as they are), broadcasting. */
function binaryDevice(context: LoadContext, op: number, integerMath: boolean): DeviceOperator {
  return {
    kind: 'kernel',
    variants: [binaryVariant(inputStorage(context, 0), inputStorage(context, 1), outputStorage(context), integerMath)],
    plan(inputs, maxPerDimension) {
      const [a, b] = [0, 1].map((index) => required(inputs, index).shape);
      const outShape = broadcastShapes(a, b);
      return { outputShapes: [outShape], dispatches: [{ ...binaryDispatch(op, IDENTITY, a, b, outShape, maxPerDimension), bindings: io(2) }] };
    },
  };
}

/** Both inputs share one datatype (ONNX's T), of a kind the operator is defined on. */
function checkBinaryTypes(context: LoadContext, kinds: readonly ElementKind[]): Datatype {
  const datatype = checkKind(context, kinds);
  if (context.inputs[1]?.datatype !== datatype) throw invalidNode(context.node, `inputs of ${datatype} and ${context.inputs[1]?.datatype ?? 'no type'}`);
  return datatype;
}

/** Mod's integer remainder with the divisor's sign (fmod=0), or C's fmod (fmod=1). */
function mod(x: number, y: number, node: NodeProto, datatype: Datatype): number {
  if (kindOf(datatype) === 'float' || booleanAttribute(node, 'fmod')) return x % y;
  const remainder = x % y;
  return remainder !== 0 && (remainder < 0) !== (y < 0) ? remainder + y : remainder;
}

export const modSpec: OperatorSpec = {
  attributes: ['fmod'],
  inputs: [2, 2],
  types: sameAsInput,
  validate: (node) => { booleanAttribute(node, 'fmod'); },
  cpu: cpuBroadcast(mod),
  device(context) {
    const datatype = checkBinaryTypes(context, ['float', 'int']);
    const fmod = booleanAttribute(context.node, 'fmod');
    const float = kindOf(datatype) === 'float';
    if (float && !fmod) throw invalidNode(context.node, `Mod of ${datatype} inputs needs fmod=1`);
    return binaryDevice(context, fmod ? BINARY_OPS.Fmod : BINARY_OPS.Mod, !float);
  },
};

type Direction = 'LEFT' | 'RIGHT';

function direction(node: NodeProto): Direction {
  if (!attributeOf(node, 'direction')) throw invalidNode(node, 'BitShift needs the direction attribute');
  return enumAttribute<Direction>(node, 'direction', ['LEFT', 'RIGHT'], 'LEFT');
}

function shift(x: number, y: number, node: NodeProto, datatype: Datatype): number {
  if (direction(node) === 'RIGHT') return Math.floor(x / 2 ** y);
  return (x * 2 ** y) % 2 ** (UNSIGNED_BITS[datatype] ?? 64);
}

export const bitShiftSpec: OperatorSpec = {
  attributes: ['direction'],
  inputs: [2, 2],
  types: sameAsInput,
  validate: (node) => { direction(node); },
  cpu: cpuBroadcast(shift),
  device(context) {
    const datatype = checkBinaryTypes(context, ['int']);
    const bits = UNSIGNED_BITS[datatype];
    if (bits === undefined) throw unsupported(context.node, `${datatype} inputs (BitShift is defined on unsigned integers)`);
    const op = direction(context.node) === 'RIGHT' ? BINARY_OPS.ShiftRight
      : bits === 8 ? BINARY_OPS.ShiftLeft8 : bits === 16 ? BINARY_OPS.ShiftLeft16 : BINARY_OPS.ShiftLeft;
    return binaryDevice(context, op, true);
  },
};

/** The value of `x op y` on the integers' bits (BigInt, so that 64-bit values up to 2^53 stay exact). */
const BITWISE: Readonly<Record<string, (x: bigint, y: bigint) => bigint>> = {
  BitwiseAnd: (x, y) => x & y,
  BitwiseOr: (x, y) => x | y,
  BitwiseXor: (x, y) => x ^ y,
};

export function bitwiseSpec(opType: 'BitwiseAnd' | 'BitwiseOr' | 'BitwiseXor'): OperatorSpec {
  const fn = BITWISE[opType];
  return {
    attributes: [],
    inputs: [2, 2],
    types: sameAsInput,
    cpu: cpuBroadcast((x, y) => Number(fn(BigInt(x), BigInt(y)))),
    device(context) {
      checkBinaryTypes(context, ['int']);
      return binaryDevice(context, BINARY_OPS[opType], true);
    },
  };
}

// CastLike: Cast with `to` taken from input 1's datatype

export const castLikeSpec: OperatorSpec = {
  attributes: ['saturate'],
  inputs: [2, 2],
  types: ({ inputTypes }: TypeContext): Datatype[] => [inputTypes[1] ?? 'FP32'],
  // Cast reads only input 0 and the output's datatype; input 1 lends its type and is never bound.
  cpu: castSpec.cpu,
  device: castSpec.device,
};
