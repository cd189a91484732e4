/**
 * Operator versions: for each default-domain operator the since_versions the ONNX spec defines up
 * to MAX_OPSET, and whether our implementation covers the semantics of each. A model at opset N
 * runs every node under the version in effect at N (the largest since_version <= N); a node is
 * refused only where that version means something our implementation does not compute.
 *
 * Older versions that differ only in how they spell things (opset 1's `consumed_inputs`, Cast's
 * `to` as a type name, Pad's `paddings`, ...) are rewritten here into the form the operator
 * specs check, so the specs themselves know only the modern attributes. An operator without an
 * entry (one added to the registry later) is taken as covered at every version.
 */
import { failedPrecondition } from '../../domain/errors.ts';
import { onnxCodeOf, type Datatype } from '../../onnx/datatypes.ts';
import type { AttributeProto, NodeProto } from '../../onnx/model.ts';
import { AttributeProto_AttributeType as AttributeType } from '../../protocol/generated/onnx/onnx.ts';
import { attributeOf, intsAttribute, qualifiedOpType, stringAttribute } from './attributes.ts';

/** The newest default-domain opset whose operator versions this table knows. */
export const MAX_OPSET = 28;

/**
 * Rewrites a node of an old version into the modern form its spec checks, or returns what that
 * version means that our implementation does not compute (the node is refused with it).
 */
type Legacy = (node: NodeProto) => NodeProto | string;

interface OperatorVersion {
  readonly since: number;
  /** What this version means that our implementation does not compute; absent when covered. */
  readonly refused?: string;
  readonly legacy?: Legacy;
}

/** A bare number is a version we cover as the spec checks it. */
type VersionList = ReadonlyArray<number | OperatorVersion>;

// ---------------------------------------------------------------------------------------------
// Rewrites of old forms

const withoutAttributes = (node: NodeProto, names: readonly string[]): NodeProto =>
  ({ ...node, attribute: node.attribute.filter((attribute) => !names.includes(attribute.name)) });

const withAttribute = (node: NodeProto, attribute: AttributeProto): NodeProto =>
  ({ ...node, attribute: [...node.attribute.filter((existing) => existing.name !== attribute.name), attribute] });

/** An INT attribute shaped like the ones the decoder produces. */
function intAttributeProto(name: string, value: number): AttributeProto {
  return {
    name, type: AttributeType.INT, f: 0, i: value, s: new Uint8Array(), t: undefined, g: undefined,
    floats: [], ints: [], strings: [], tensors: [], graphs: [],
  };
}

/** `consumed_inputs` (opset 1) only told a runtime which inputs it may overwrite in place. */
const dropConsumedInputs: Legacy = (node) => withoutAttributes(node, ['consumed_inputs']);

/**
 * Binary operators before opset 7: `broadcast=1` allowed B to match a suffix of A's shape, which
 * numpy broadcasting also does; `axis` aligned B with A at a chosen dim instead of at the end.
 */
const legacyBroadcast: Legacy = (node) => {
  if (attributeOf(node, 'axis')) {
    return "'axis' aligned B with A at that dim (opsets before 7); from opset 7 shapes broadcast from the trailing dims";
  }
  return withoutAttributes(node, ['broadcast', 'consumed_inputs']);
};

/** BatchNormalization before opset 7: `is_test=1` is inference; 0 (the default) normalizes with the batch's own statistics. */
const legacyBatchNorm: Legacy = (node) => {
  const isTest = attributeOf(node, 'is_test');
  if (!isTest || Number(isTest.i) !== 1) {
    return 'is_test=0 (the default before opset 7): training mode, which normalizes with the statistics of the batch itself';
  }
  return withoutAttributes(node, ['is_test', 'consumed_inputs']);
};

/** Cast-1 named the target type as a string ('FLOAT', 'INT64', ...); from opset 6 it is the TensorProto code. */
const CAST_TYPE_NAMES: Readonly<Record<string, Datatype>> = {
  FLOAT: 'FP32', DOUBLE: 'FP64', FLOAT16: 'FP16', BFLOAT16: 'BF16', BOOL: 'BOOL', STRING: 'BYTES',
  UINT8: 'UINT8', UINT16: 'UINT16', UINT32: 'UINT32', UINT64: 'UINT64', INT8: 'INT8', INT16: 'INT16', INT32: 'INT32', INT64: 'INT64',
};
const legacyCast: Legacy = (node) => {
  const to = attributeOf(node, 'to');
  if (to?.type !== AttributeType.STRING) return node;
  const name = stringAttribute(node, 'to', '').toUpperCase();
  const datatype = CAST_TYPE_NAMES[name];
  if (!datatype) return `to='${name}', a type name Cast-1 does not define`;
  return withAttribute(node, intAttributeProto('to', onnxCodeOf(datatype)));
};

/** RNN / GRU / LSTM before opset 7: output_sequence=0 only made Y optional, which an unnamed Y already is. */
const dropOutputSequence: Legacy = (node) => withoutAttributes(node, ['output_sequence']);

/**
 * Dropout before opset 10 typed its mask like the input (T), where the spec computes a BOOL one
 * (opset 10 on): the mask is not computed (models name it without reading it; a node that reads
 * it fails the load as reading a value nothing computes).
 */
const legacyDropout: Legacy = (node) => ({ ...withoutAttributes(node, ['consumed_inputs']), output: node.output.slice(0, 1) });

/** Concat-1's axis was optional, default 1; from opset 4 it is required. */
const legacyConcat: Legacy = (node) => (attributeOf(node, 'axis') ? node : withAttribute(node, intAttributeProto('axis', 1)));

/** Pad-1 called its pads `paddings`. */
const legacyPad: Legacy = (node) => {
  const paddings = attributeOf(node, 'paddings');
  return paddings ? withAttribute(withoutAttributes(node, ['paddings']), { ...paddings, name: 'pads' }) : node;
};

/** Split-1 could take the split sizes from a second input, which later versions read differently. */
const legacySplit: Legacy = (node) =>
  (node.input[1] ? 'split sizes from a second input (opset 1); opsets 2 to 12 take them from the split attribute only' : node);

/**
 * ConvTranspose before opset 11: pads derived from output_shape or auto_pad SAME were split the
 * other way round (the larger half at the start for SAME_UPPER), and dilations did not widen
 * the kernel in the output-size formula.
 */
const legacyConvTranspose: Legacy = (node) => {
  const autoPad = stringAttribute(node, 'auto_pad', 'NOTSET');
  if (attributeOf(node, 'output_shape') || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    return 'output_shape or auto_pad SAME before opset 11, which split the derived pads the other way round (opset 11 swapped them)';
  }
  if ((intsAttribute(node, 'dilations') ?? []).some((dilation) => dilation !== 1)) {
    return 'dilations before opset 11, whose output-size formula did not dilate the kernel';
  }
  return node;
};

// ---------------------------------------------------------------------------------------------
// The table: since_versions up to MAX_OPSET (ONNX operator changelog), per operator in the registry.

const v = (since: number, legacy?: Legacy): OperatorVersion => ({ since, legacy });
const refused = (since: number, reason: string): OperatorVersion => ({ since, refused: reason });

/** Unary maths: opset 1 had consumed_inputs, 6 widened types, 13 added bfloat16. */
const UNARY_1_6_13: VersionList = [v(1, dropConsumedInputs), 6, 13];
/** Activations whose opset 22 version only added bfloat16 / float16 types. */
const ACTIVATION_1_6_22: VersionList = [v(1, dropConsumedInputs), 6, 22];
/** Add, Sub, Mul, Div: numpy broadcasting from 7, bfloat16 at 13, 8- and 16-bit integers at 14. */
const ARITHMETIC: VersionList = [v(1, legacyBroadcast), v(6, legacyBroadcast), 7, 13, 14];
/** Operators whose later versions only added element types (float8, int4, float4, float8e8m0, int2). */
const TYPES_ONLY_SINCE_13: readonly number[] = [13, 21, 23, 24, 25];

const PRELU_BEFORE_7 = 'Slope was either one shared value or one per channel (opsets before 7); from opset 7 it broadcasts unidirectionally to X';

const OPERATOR_VERSIONS: Readonly<Record<string, VersionList>> = {
  // element-wise maths and activations
  Abs: UNARY_1_6_13, Neg: UNARY_1_6_13, Exp: UNARY_1_6_13, Log: UNARY_1_6_13, Sqrt: UNARY_1_6_13,
  Reciprocal: UNARY_1_6_13, Floor: UNARY_1_6_13, Ceil: UNARY_1_6_13, Sigmoid: UNARY_1_6_13, Tanh: UNARY_1_6_13,
  Relu: [v(1, dropConsumedInputs), 6, 13, 14],
  LeakyRelu: [v(1, dropConsumedInputs), 6, 16],
  Elu: ACTIVATION_1_6_22, Selu: ACTIVATION_1_6_22, HardSigmoid: ACTIVATION_1_6_22,
  HardSwish: [14, 22],
  Softplus: [1, 22],
  Erf: [9, 13],
  Gelu: [20],
  Not: [1],
  Sin: [7, 22], Cos: [7, 22], Tan: [7, 22], Asin: [7, 22], Acos: [7, 22], Atan: [7, 22],
  Sinh: [9, 22], Cosh: [9, 22], Asinh: [9, 22], Acosh: [9, 22], Atanh: [9, 22],
  Round: [11, 22], Sign: [9, 13], Mish: [18, 22], Shrink: [9], ThresholdedRelu: [10, 22], Celu: [12], Softsign: [1, 22],
  IsNaN: [9, 13, 20], IsInf: [10, 20],
  BitwiseNot: [18], BitwiseAnd: [18], BitwiseOr: [18], BitwiseXor: [18], BitShift: [11], Mod: [10, 13],
  Clip: [v(1, dropConsumedInputs), 6, 11, 12, 13],
  Cast: [v(1, legacyCast), 6, 9, 13, 19, 21, 23, 24, 25],
  CastLike: [15, 19, 21, 23, 24, 25],
  Add: ARITHMETIC, Sub: ARITHMETIC, Mul: ARITHMETIC, Div: ARITHMETIC,
  Pow: [v(1, legacyBroadcast), 7, 12, 13, 15],
  PRelu: [refused(1, PRELU_BEFORE_7), refused(6, PRELU_BEFORE_7), 7, 9, 16],
  Equal: [v(1, legacyBroadcast), 7, 11, 13, 19],
  Greater: [v(1, legacyBroadcast), 7, 9, 13],
  Less: [v(1, legacyBroadcast), 7, 9, 13],
  GreaterOrEqual: [12, 16],
  LessOrEqual: [12, 16],
  And: [v(1, legacyBroadcast), 7], Or: [v(1, legacyBroadcast), 7], Xor: [v(1, legacyBroadcast), 7],
  // Min, Max, Sum, Mean: opsets 1 and 6 required equal shapes; numpy broadcasting (from 8) computes those alike.
  Min: [v(1, dropConsumedInputs), 6, 8, 12, 13],
  Max: [v(1, dropConsumedInputs), 6, 8, 12, 13],
  Sum: [v(1, dropConsumedInputs), 6, 8, 13],
  Mean: [v(1, dropConsumedInputs), 6, 8, 13],
  Where: [9, 16],
  // GEMM, convolution, normalization, pooling
  MatMul: [1, 9, 13],
  Gemm: [1, 6, 7, 9, 11, 13],
  Conv: [1, 11, 22],
  ConvTranspose: [v(1, legacyConvTranspose), 11, 22],
  BatchNormalization: [v(1, legacyBatchNorm), v(6, legacyBatchNorm), 7, 9, 14, 15],
  // ONNX defines LayerNormalization from 17; onnxruntime registers the same operator in the
  // default domain from opset 1, and its transformer optimizer writes it into models at 11 to 16,
  // so those load too.
  LayerNormalization: [1, 17],
  InstanceNormalization: [v(1, dropConsumedInputs), 6, 22],
  GroupNormalization: [18, 21],
  MeanVarianceNormalization: [9, 13],
  RMSNormalization: [23],
  LRN: [1, 13],
  MaxPool: [1, 8, 10, 11, 12, 22],
  AveragePool: [1, 7, 10, 11, 19, 22],
  GlobalAveragePool: [1, 22],
  GlobalMaxPool: [1, 22],
  LpPool: [1, 2, 11, 18, 22],
  GlobalLpPool: [1, 2, 22],
  Softmax: [1, 11, 13],
  LogSoftmax: [1, 11, 13],
  // reductions
  ReduceSum: [1, 11, 13],
  ReduceMean: [1, 11, 13, 18],
  ReduceProd: [1, 11, 13, 18],
  ReduceMax: [1, 11, 12, 13, 18, 20],
  ReduceMin: [1, 11, 12, 13, 18, 20],
  ReduceSumSquare: [1, 11, 13, 18],
  ReduceL1: [1, 11, 13, 18],
  ReduceL2: [1, 11, 13, 18],
  ReduceLogSum: [1, 11, 13, 18],
  ReduceLogSumExp: [1, 11, 13, 18],
  ArgMax: [1, 11, 12, 13],
  ArgMin: [1, 11, 12, 13],
  CumSum: [11, 14],
  Trilu: [14],
  DepthToSpace: [1, 11, 13],
  SpaceToDepth: [1, 13],
  // data movement and shapes
  Transpose: [1, ...TYPES_ONLY_SINCE_13],
  Concat: [v(1, legacyConcat), 4, 11, 13],
  Split: [v(1, legacySplit), 2, 11, 13, 18],
  Slice: [1, 10, 11, 13],
  Gather: [1, 11, 13],
  GatherElements: [11, 13],
  GatherND: [11, 12, 13],
  OneHot: [9, 11],
  Scatter: [9],
  ScatterElements: [11, 13, 16, 18],
  ScatterND: [11, 13, 16, 18],
  TopK: [1, 10, 11, 24],
  NonZero: [9, 13],
  Unique: [11],
  TfIdfVectorizer: [9],
  NonMaxSuppression: [10, 11],
  Resize: [10, 11, 13, 18, 19],
  // Upsample-10 is deprecated in favour of Resize-10 and has no definition of its own to run.
  Upsample: [7, 9],
  Einsum: [12],
  // control flow: later versions widened the types a subgraph may carry (optional and sequence
  // values at 16, float8 at 19, 4-bit at 21, ...); the executor carries tensors through them.
  If: [1, 11, 13, 16, 19, 21, 23, 24, 25],
  Loop: [1, 11, 13, 16, 19, 21, 23, 24, 25],
  // Scan-8 has a batch axis and sequence_lens; 9 took scan axes and directions per input and output.
  Scan: [8, 9, 11, 16, 19, 21, 23, 24, 25],
  Expand: [8, 13],
  Tile: [refused(1, "Tile-1 repeated along one axis given by its 'tiles' and 'axis' inputs; from opset 6 'repeats' gives a count per axis"), 6, 13],
  Pad: [v(1, legacyPad), 2, 11, 13, 18, 19, 21, 23, 24, 25],
  Reshape: [v(1, dropConsumedInputs), 5, 13, 14, 19, 21, 23, 24, 25],
  Flatten: [1, 9, 11, ...TYPES_ONLY_SINCE_13],
  Squeeze: [1, 11, ...TYPES_ONLY_SINCE_13],
  Unsqueeze: [1, 11, ...TYPES_ONLY_SINCE_13],
  Identity: [1, 13, 14, 16, 19, 21, 23, 24, 25],
  Dropout: [v(1, legacyDropout), v(6, legacyDropout), v(7, legacyDropout), 10, 12, 13, 22],
  // host operators
  Shape: [1, 13, 15, 19, 21, 23, 24, 25],
  Size: [1, 13, 19, 21, 23, 24, 25],
  Constant: [1, 9, 11, 12, 13, 19, 21, 23, 24, 25],
  ConstantOfShape: [9, 20, 21, 23, 24, 25],
  // Range-27 added float16 / bfloat16 with stash_type, the precision of the accumulation; the
  // host computes every Range in float64 and rounds once, which that covers.
  Range: [11, 27],
  // quantization: 19 added float16 scales and float8 (saturate), 21 blocks, output_dtype and 4-bit
  // types, 23 precision and float4, 24 float8e8m0, 25 2-bit types; the integer types run at each.
  QuantizeLinear: [10, 13, 19, 21, 23, 24, 25],
  DequantizeLinear: [10, 13, 19, 21, 23, 24, 25],
  DynamicQuantizeLinear: [11],
  MatMulInteger: [10],
  QLinearMatMul: [10, 21],
  ConvInteger: [10],
  QLinearConv: [10],
  // signal: DFT-20 moved axis from an attribute to its third input (default -2); the windows and
  // MelWeightMatrix have not changed since 17.
  DFT: [17, 20],
  STFT: [17],
  HannWindow: [17],
  HammingWindow: [17],
  BlackmanWindow: [17],
  MelWeightMatrix: [17],
  // losses (host), and host operators: 22 only added bfloat16 / float16 types; Hardmax-13 took
  // one axis where 1 and 11 coerced the input to 2-D at it (the spec reads the version).
  NegativeLogLikelihoodLoss: [12, 13, 22],
  SoftmaxCrossEntropyLoss: [12, 13],
  Hardmax: [1, 11, 13],
  Compress: [9, 11],
  EyeLike: [9, 22],
  ReverseSequence: [10],
  Det: [11, 22],
  // recurrent: opset 7 dropped output_sequence (Y is computed whenever it is named), 14 added
  // layout, 22 bfloat16; GRU-3 added linear_before_reset.
  RNN: [v(1, dropOutputSequence), 7, 14, 22],
  GRU: [v(1, dropOutputSequence), v(3, dropOutputSequence), 7, 14, 22],
  LSTM: [v(1, dropOutputSequence), 7, 14, 22],
  // sampling: GridSample-20 renamed bilinear / bicubic to linear / cubic and added volumes, 22 types only.
  GridSample: [16, 20, 22],
  // RoiAlign-16 added coordinate_transformation_mode (half_pixel by default; 10 computed output_half_pixel).
  RoiAlign: [10, 16, 22],
  // MaxUnpool-11 let output_shape give the output's shape exactly; 22 types only.
  MaxUnpool: [9, 11, 22],
};

/** The operators the table lists. */
export const VERSIONED_OPERATORS: readonly string[] = Object.keys(OPERATOR_VERSIONS);

const asVersion = (entry: number | OperatorVersion): OperatorVersion => (typeof entry === 'number' ? { since: entry } : entry);

/**
 * The since_version of `opType` in effect at `opset` (the largest since_version <= opset);
 * undefined when ONNX does not define the operator yet at that opset, or when the table has no
 * entry (then every version counts as covered).
 */
export function sinceVersionOf(opType: string, opset: number): number | undefined {
  return versionAt(opType, opset)?.since;
}

function versionAt(opType: string, opset: number): OperatorVersion | undefined {
  const versions = OPERATOR_VERSIONS[opType];
  if (!versions) return undefined;
  let found: OperatorVersion | undefined;
  for (const entry of versions) {
    const version = asVersion(entry);
    if (version.since <= opset) found = version;
  }
  return found;
}

/**
 * The node as its operator's spec checks it: the version in effect at `opset` resolved, old
 * spellings rewritten. Throws FAILED_PRECONDITION naming the operator, the node, the version and
 * what that version means when our implementation does not cover it, or when ONNX does not
 * define the operator at `opset`.
 */
export function resolveOperatorVersion(node: NodeProto, opset: number): NodeProto {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return node;
  const versions = OPERATOR_VERSIONS[node.opType];
  if (!versions) return node;
  const version = versionAt(node.opType, opset);
  const opType = qualifiedOpType(node);
  if (!version) {
    throw failedPrecondition(
      `operator '${opType}' (node '${node.name}') does not exist at opset ${opset}: ONNX defines it from opset ${asVersion(versions[0]).since}`,
    );
  }
  const outcome = version.refused ?? version.legacy?.(node) ?? node;
  if (typeof outcome === 'string') {
    throw failedPrecondition(`operator '${opType}' version ${version.since} (node '${node.name}', opset ${opset}) is not supported: ${outcome}`);
  }
  return outcome;
}
