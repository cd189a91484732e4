/**
 * The supported ONNX operators: attribute checks at compile time, and for each node either a
 * kernel (pipeline variant + per-shape dispatch) or an alias (a new shape over the same buffer).
 */
import type { AttributeProto, HostTensor, NodeProto } from '../../onnx/model.ts';
import { tensorFromProto } from '../../onnx/model.ts';
import { AttributeProto_AttributeType as AttributeType } from '../../protocol/generated/onnx/onnx.ts';
import { failedPrecondition } from '../../rpc/errors.ts';
import { binaryDispatch, binaryVariant, isBinaryOp, BINARY_MAX_RANK } from '../kernels/binary.ts';
import type { Dispatch, KernelVariant } from '../kernels/kernel.ts';
import { matmulDispatch, matmulVariants } from '../kernels/matmul.ts';
import { softmaxDispatch, softmaxVariant } from '../kernels/softmax.ts';
import { isUnaryOp, unaryDispatch, unaryVariant } from '../kernels/unary.ts';
import { broadcastShapes, flattenShape, gemmShapes, matmulShapes, normalizeAxis, reshapeShape, softmaxProblem } from './shapes.ts';

/** Input shapes in node-input order; undefined for an absent optional input. */
export type InputShapes = ReadonlyArray<readonly number[] | undefined>;

interface OperatorBase {
  /** Output rank for these input ranks; throws FAILED_PRECONDITION when the model is invalid for them. */
  outputRank(inputRanks: ReadonlyArray<number | undefined>): number;
  /** Output shape; throws INVALID_ARGUMENT when the shapes do not fit together. */
  inferShape(inputShapes: InputShapes): number[];
}

/** A node computed by one dispatch of one kernel. */
export interface KernelOperator extends OperatorBase {
  readonly kind: 'kernel';
  /** Every pipeline variant a dispatch may pick (Dispatch.variant indexes this); built at compile time. */
  readonly variants: readonly KernelVariant[];
  /**
   * The kernel's input bindings, as indices into the node's inputs, in binding order; the
   * output binding and the uniform block follow. An index with no input (e.g. MatMul's bias
   * slot, Gemm without C) gets a placeholder buffer.
   */
  readonly inputSlots: readonly number[];
  dispatch(inputShapes: InputShapes, outputShape: readonly number[], maxPerDimension: number): Dispatch;
}

/** A node that only relabels its first input's shape; its output shares that input's buffer. */
export interface AliasOperator extends OperatorBase {
  readonly kind: 'alias';
}

export type RuntimeOperator = KernelOperator | AliasOperator;

/** A node being compiled, with the compile-time constants it may read. */
export interface CompilingNode {
  readonly node: NodeProto;
  readonly opset: number;
  /** The value of input `index` when it is known at compile time (initializer, Constant, folded). */
  constantInput(index: number): HostTensor | undefined;
}

interface OperatorDefinition {
  /** Attribute names the implementation understands; any other attribute is refused. */
  readonly attributes: readonly string[];
  /** Allowed input counts, [min, max] (trailing '' inputs count as absent). */
  readonly inputs: readonly [number, number];
  compile(node: CompilingNode): RuntimeOperator;
}

/** FAILED_PRECONDITION "operator 'X' (node 'n') is not supported[ with detail]". */
export function unsupported(node: NodeProto, detail?: string) {
  return failedPrecondition(`operator '${qualifiedOpType(node)}' (node '${node.name}') is not supported${detail ? ` with ${detail}` : ''}`);
}

/** FAILED_PRECONDITION for a model that is not valid ONNX at this node. */
export function invalidNode(node: NodeProto, detail: string) {
  return failedPrecondition(`node '${node.name}' (${qualifiedOpType(node)}) is invalid: ${detail}`);
}

function qualifiedOpType(node: NodeProto): string {
  return node.domain && node.domain !== 'ai.onnx' ? `${node.domain}.${node.opType}` : node.opType;
}

function attributeOf(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((attribute) => attribute.name === name);
}

function intAttribute(node: NodeProto, name: string, fallback: number): number {
  const attribute = attributeOf(node, name);
  if (!attribute) return fallback;
  if (attribute.type !== AttributeType.INT) throw unsupported(node, `attribute ${name} of type ${attribute.type} (expected INT)`);
  return Number(attribute.i);
}

function floatAttribute(node: NodeProto, name: string, fallback: number): number {
  const attribute = attributeOf(node, name);
  if (!attribute) return fallback;
  if (attribute.type === AttributeType.FLOAT) return attribute.f;
  // Some exporters write integral alpha/beta as INT.
  if (attribute.type === AttributeType.INT) return Number(attribute.i);
  throw unsupported(node, `attribute ${name} of type ${attribute.type} (expected FLOAT)`);
}

function booleanAttribute(node: NodeProto, name: string): boolean {
  const value = intAttribute(node, name, 0);
  if (value !== 0 && value !== 1) throw unsupported(node, `${name}=${value} (expected 0 or 1)`);
  return value === 1;
}

/** Runs a rank rule, turning its INVALID_ARGUMENT into a FAILED_PRECONDITION on the node. */
function rankRule(node: NodeProto, rule: () => number): number {
  try {
    return rule();
  } catch (error) {
    throw invalidNode(node, (error as Error).message);
  }
}

function ranksOf(node: NodeProto, inputRanks: ReadonlyArray<number | undefined>, count: number): number[] {
  const ranks = inputRanks.slice(0, count);
  if (ranks.some((rank) => rank === undefined)) throw invalidNode(node, `needs ${count} inputs`);
  return ranks as number[];
}

function required(shapes: InputShapes, index: number): readonly number[] {
  const shape = shapes[index];
  if (!shape) throw new Error(`input ${index} has no shape`);
  return shape;
}

const matMul: OperatorDefinition = {
  attributes: [],
  inputs: [2, 2],
  compile: ({ node }) => ({
    kind: 'kernel',
    variants: matmulVariants({ transA: false, transB: false, hasBias: false }),
    // Slot 2 (bias) is never a MatMul input: it gets the placeholder.
    inputSlots: [0, 1, 2],
    outputRank(inputRanks) {
      const [a, b] = ranksOf(node, inputRanks, 2);
      return rankRule(node, () => {
        if (a === 0 || b === 0) throw new Error('MatMul operands need rank >= 1');
        const rank = Math.max(a, b, 2) - Number(a === 1) - Number(b === 1);
        if (Math.max(a, b) > 6) throw new Error(`operands of rank ${a} and ${b} exceed the supported rank 6`);
        return rank;
      });
    },
    inferShape: (shapes) => matmulShapes(required(shapes, 0), required(shapes, 1)).outShape,
    dispatch: (shapes, _out, maxPerDimension) => matmulDispatch(matmulShapes(required(shapes, 0), required(shapes, 1)).problem, maxPerDimension),
  }),
};

const gemm: OperatorDefinition = {
  // `broadcast` is the opset < 7 flag for what later opsets always do.
  attributes: ['alpha', 'beta', 'transA', 'transB', 'broadcast'],
  inputs: [2, 3],
  compile: ({ node }) => {
    const attributes = {
      alpha: floatAttribute(node, 'alpha', 1),
      beta: floatAttribute(node, 'beta', 1),
      transA: booleanAttribute(node, 'transA'),
      transB: booleanAttribute(node, 'transB'),
    };
    const hasBias = Boolean(node.input[2]);
    const problemOf = (shapes: InputShapes) =>
      gemmShapes(required(shapes, 0), required(shapes, 1), hasBias ? required(shapes, 2) : undefined, attributes);
    return {
      kind: 'kernel',
      variants: matmulVariants({ transA: attributes.transA, transB: attributes.transB, hasBias }),
      inputSlots: [0, 1, 2],
      outputRank(inputRanks) {
        const [a, b] = ranksOf(node, inputRanks, 2);
        const c = inputRanks[2];
        return rankRule(node, () => {
          if (a !== 2 || b !== 2) throw new Error(`Gemm needs 2-D A and B, got ranks ${a} and ${b}`);
          if (c !== undefined && c > 2) throw new Error(`Gemm's C must have rank <= 2, got ${c}`);
          return 2;
        });
      },
      inferShape: (shapes) => problemOf(shapes).outShape,
      dispatch: (shapes, _out, maxPerDimension) => matmulDispatch(problemOf(shapes).problem, maxPerDimension),
    };
  },
};

function binary(opType: string): OperatorDefinition {
  if (!isBinaryOp(opType)) throw new Error(`${opType} is not a binary kernel op`);
  return {
    attributes: [],
    inputs: [2, 2],
    compile: ({ node }) => ({
      kind: 'kernel',
      variants: [binaryVariant(opType)],
      inputSlots: [0, 1],
      outputRank(inputRanks) {
        const rank = Math.max(...ranksOf(node, inputRanks, 2));
        if (rank > BINARY_MAX_RANK) throw unsupported(node, `rank ${rank} (at most ${BINARY_MAX_RANK})`);
        return rank;
      },
      inferShape: (shapes) => broadcastShapes(required(shapes, 0), required(shapes, 1)),
      dispatch: (shapes, out, maxPerDimension) => binaryDispatch(required(shapes, 0), required(shapes, 1), out, maxPerDimension),
    }),
  };
}

function unary(opType: string): OperatorDefinition {
  if (!isUnaryOp(opType)) throw new Error(`${opType} is not a unary kernel op`);
  return {
    attributes: [],
    inputs: [1, 1],
    compile: ({ node }) => ({
      kind: 'kernel',
      variants: [unaryVariant(opType)],
      inputSlots: [0],
      outputRank: (inputRanks) => ranksOf(node, inputRanks, 1)[0],
      inferShape: (shapes) => [...required(shapes, 0)],
      dispatch: (_shapes, out, maxPerDimension) => unaryDispatch(out.reduce((total, dim) => total * dim, 1), maxPerDimension),
    }),
  };
}

const softmax: OperatorDefinition = {
  attributes: ['axis'],
  inputs: [1, 1],
  compile: ({ node, opset }) => {
    const axis = intAttribute(node, 'axis', opset >= 13 ? -1 : 1);
    return {
      kind: 'kernel',
      variants: [softmaxVariant()],
      inputSlots: [0],
      outputRank(inputRanks) {
        const [rank] = ranksOf(node, inputRanks, 1);
        return rankRule(node, () => {
          if (rank === 0) throw new Error('Softmax needs an input of rank >= 1');
          normalizeAxis(axis, rank);
          return rank;
        });
      },
      inferShape: (shapes) => [...required(shapes, 0)],
      dispatch: (shapes, _out, maxPerDimension) => softmaxDispatch(softmaxProblem(required(shapes, 0), axis, opset), maxPerDimension),
    };
  },
};

const reshape: OperatorDefinition = {
  // `shape` is the opset < 5 attribute form of the second input.
  attributes: ['allowzero', 'shape'],
  inputs: [1, 2],
  compile: ({ node, constantInput }) => {
    const allowZero = booleanAttribute(node, 'allowzero');
    let target: number[];
    const shapeAttribute = attributeOf(node, 'shape');
    if (shapeAttribute) {
      target = shapeAttribute.ints.map(Number);
    } else {
      const shapeTensor = constantInput(1);
      if (!shapeTensor) throw unsupported(node, `a shape ('${node.input[1] ?? ''}') computed at run time (it must be an initializer or Constant)`);
      if (shapeTensor.datatype !== 'INT64' || shapeTensor.shape.length !== 1) {
        throw invalidNode(node, `shape must be a 1-D INT64 tensor, got ${shapeTensor.datatype} [${shapeTensor.shape}]`);
      }
      target = Array.from(shapeTensor.data as BigInt64Array, Number);
    }
    return {
      kind: 'alias',
      outputRank: () => target.length,
      inferShape: (shapes) => reshapeShape(required(shapes, 0), target, allowZero),
    };
  },
};

const flatten: OperatorDefinition = {
  attributes: ['axis'],
  inputs: [1, 1],
  compile: ({ node }) => {
    const axis = intAttribute(node, 'axis', 1);
    return {
      kind: 'alias',
      outputRank(inputRanks) {
        const [rank] = ranksOf(node, inputRanks, 1);
        return rankRule(node, () => (normalizeAxis(axis, rank, true), 2));
      },
      inferShape: (shapes) => flattenShape(required(shapes, 0), axis),
    };
  },
};

const identity: OperatorDefinition = {
  attributes: [],
  inputs: [1, 1],
  compile: ({ node }) => ({
    kind: 'alias',
    outputRank: (inputRanks) => ranksOf(node, inputRanks, 1)[0],
    inferShape: (shapes) => [...required(shapes, 0)],
  }),
};

const OPERATORS: ReadonlyMap<string, OperatorDefinition> = new Map([
  ['MatMul', matMul],
  ['Gemm', gemm],
  ['Add', binary('Add')],
  ['Sub', binary('Sub')],
  ['Mul', binary('Mul')],
  ['Div', binary('Div')],
  ['Relu', unary('Relu')],
  ['Sigmoid', unary('Sigmoid')],
  ['Tanh', unary('Tanh')],
  ['Softmax', softmax],
  ['Reshape', reshape],
  ['Flatten', flatten],
  ['Identity', identity],
]);

/** Attribute names the Constant operator accepts, with how each becomes a tensor. */
const CONSTANT_ATTRIBUTES = ['value', 'value_float', 'value_floats', 'value_int', 'value_ints'];

/** The operator types compileOnnxModel accepts (default ONNX domain). */
export const SUPPORTED_OPERATORS: readonly string[] = [...OPERATORS.keys(), 'Constant'].sort();

function isDefaultDomain(node: NodeProto): boolean {
  return node.domain === '' || node.domain === 'ai.onnx';
}

/** Throws FAILED_PRECONDITION unless the node's operator and attribute names are supported. */
export function checkSupported(node: NodeProto): void {
  const definition = isDefaultDomain(node) ? OPERATORS.get(node.opType) : undefined;
  const attributes = definition?.attributes ?? (isDefaultDomain(node) && node.opType === 'Constant' ? CONSTANT_ATTRIBUTES : undefined);
  if (!attributes) throw unsupported(node);
  for (const attribute of node.attribute) {
    if (!attributes.includes(attribute.name)) throw unsupported(node, `attribute '${attribute.name}'`);
  }
  if (node.output.length !== 1) throw invalidNode(node, `has ${node.output.length} outputs, expected 1`);
  if (definition) {
    const inputCount = presentInputCount(node);
    const [min, max] = definition.inputs;
    if (inputCount < min || node.input.length > max) {
      throw invalidNode(node, `has ${node.input.length} inputs, expected ${min === max ? min : `${min} to ${max}`}`);
    }
  }
}

/** Inputs up to the last non-empty name ('' marks an omitted optional input). */
function presentInputCount(node: NodeProto): number {
  let count = node.input.length;
  while (count > 0 && !node.input[count - 1]) count--;
  return count;
}

/** Compiles a node whose operator passed checkSupported (Constant excluded). */
export function compileOperator(node: CompilingNode): RuntimeOperator {
  const definition = OPERATORS.get(node.node.opType);
  if (!definition) throw unsupported(node.node);
  return definition.compile(node);
}

/** The tensor a Constant node holds. */
export function constantValue(node: NodeProto): HostTensor {
  const [attribute] = node.attribute;
  if (!attribute || node.attribute.length !== 1) throw invalidNode(node, 'a Constant needs exactly one value attribute');
  switch (attribute.name) {
    case 'value':
      if (!attribute.t) throw invalidNode(node, 'value has no tensor');
      return tensorFromProto(attribute.t);
    case 'value_float': return { datatype: 'FP32', shape: [], data: Float32Array.of(attribute.f) };
    case 'value_floats': return { datatype: 'FP32', shape: [attribute.floats.length], data: Float32Array.from(attribute.floats) };
    case 'value_int': return { datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(attribute.i)) };
    case 'value_ints': return { datatype: 'INT64', shape: [attribute.ints.length], data: BigInt64Array.from(attribute.ints, (value) => BigInt(value)) };
    default: throw unsupported(node, `attribute '${attribute.name}'`);
  }
}
