/**
 * The resolve table: ONNX op type -> operator spec, and the load-time check that a node is one
 * the executor runs (operator, attribute names, input / output counts, attribute values). The
 * specs themselves live one file per operator family.
 */
import type { NodeProto } from '../../onnx/model.ts';
import { ONNX_UNARY } from '../kernels/index.ts';
import { intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { OperatorSpec } from './contract.ts';
import { concatSpec, expandSpec, gatherSpec, padSpec, sliceSpec, splitSpec, tileSpec, transposeSpec } from './data-movement.ts';
import { argReduceSpec, cumSumSpec } from './arg-reduce.ts';
import { einsumSpec } from './einsum.ts';
import { binarySpec, castSpec, clipSpec, unarySpec, whereSpec } from './elementwise.ts';
import { convSpec, convTransposeSpec, gemmSpec, matMulSpec } from './gemm-conv.ts';
import { gatherElementsSpec, gatherNdSpec, oneHotSpec } from './indexing.ts';
import { depthToSpaceSpec, spaceToDepthSpec, triluSpec } from './layout.ts';
import { lrnSpec } from './lrn.ts';
import { bitShiftSpec, bitwiseSpec, castLikeSpec, MATH_UNARY_OPS, mathUnarySpec, modSpec } from './math.ts';
import { nonMaxSuppressionSpec } from './nms.ts';
import { nonZeroSpec, uniqueSpec } from './nonzero.ts';
import { batchNormSpec, layerNormSpec } from './normalization.ts';
import { groupNormSpec, instanceNormSpec, meanVarianceNormSpec, rmsNormSpec } from './normalization-extra.ts';
import { globalPoolSpec, poolSpec } from './pool.ts';
import { REDUCE_OP_OF, reduceSpec } from './reduce.ts';
import { gruSpec, lstmSpec, rnnSpec } from './recurrent.ts';
import { gridSampleSpec } from './grid-sample.ts';
import { roiAlignSpec } from './roi-align.ts';
import { maxUnpoolSpec } from './max-unpool.ts';
import { resizeSpec } from './resize.ts';
import { EXTRA_REDUCTIONS, extraReductionSpec } from './reduce-extra.ts';
import { scatterElementsSpec, scatterNdSpec } from './scatter.ts';
import {
  constantOfShapeSpec, flattenSpec, identitySpec, rangeSpec, reshapeSpec, shapeSpec, sizeSpec, squeezeLikeSpec,
} from './shape-ops.ts';
import { batchNormTrainingSpec } from './batchnorm-training.ts';
import { dropoutSpec } from './dropout.ts';
import { compressSpec, detSpec, eyeLikeSpec, hardmaxSpec, reverseSequenceSpec } from './host-ops.ts';
import { negativeLogLikelihoodLossSpec, softmaxCrossEntropyLossSpec } from './losses.ts';
import { TRAINING_DOMAIN, TRAINING_OPERATORS } from './training.ts';
import { softmaxSpec } from './softmax.ts';
import { contribSpec } from './contrib-registry.ts';
import { simplifiedLayerNormSpec } from './contrib-normalization.ts';
import { tfIdfVectorizerSpec } from './tfidf.ts';
import { topKSpec } from './topk.ts';
import { dftSpec, stftSpec } from './signal.ts';
import { melWeightMatrixSpec, WINDOW_OPS, windowSpec } from './signal-windows.ts';
import { globalLpPoolSpec, lpPoolSpec } from './window-nd.ts';
import { meanSpec, sumSpec } from './variadic.ts';
import {
  convIntegerSpec, dequantizeLinearSpec, dynamicQuantizeLinearSpec, matMulIntegerSpec, qLinearConvSpec, qLinearMatMulSpec, quantizeLinearSpec,
} from './quantization.ts';
import { ifSpec, loopSpec, scanSpec } from './control-flow.ts';

const OPERATORS: ReadonlyMap<string, OperatorSpec> = new Map<string, OperatorSpec>([
  ...Object.keys(ONNX_UNARY).filter((op) => op !== 'Identity').map((op) => [op, unarySpec(op)] as [string, OperatorSpec]),
  ['Gelu', unarySpec('Gelu')],
  ['Clip', clipSpec],
  ['Cast', castSpec],
  ['CastLike', castLikeSpec],
  ...MATH_UNARY_OPS.map((op) => [op, mathUnarySpec(op)] as [string, OperatorSpec]),
  ['Mod', modSpec],
  ['BitShift', bitShiftSpec],
  ...(['BitwiseAnd', 'BitwiseOr', 'BitwiseXor'] as const).map((op) => [op, bitwiseSpec(op)] as [string, OperatorSpec]),
  ...(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'PRelu', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor'] as const)
    .map((op) => [op, binarySpec(op)] as [string, OperatorSpec]),
  ['Min', binarySpec('Min', true)],
  ['Max', binarySpec('Max', true)],
  ['Sum', sumSpec],
  ['Mean', meanSpec],
  ['Where', whereSpec],
  ['MatMul', matMulSpec],
  ['Gemm', gemmSpec],
  ['Conv', convSpec],
  ['ConvTranspose', convTransposeSpec],
  ['BatchNormalization', batchNormSpec],
  ['MaxPool', poolSpec(true)],
  ['AveragePool', poolSpec(false)],
  ['GlobalAveragePool', globalPoolSpec('mean')],
  ['GlobalMaxPool', globalPoolSpec('max')],
  ['Softmax', softmaxSpec(false)],
  ['LogSoftmax', softmaxSpec(true)],
  ['LayerNormalization', layerNormSpec],
  // onnxruntime registers this one in the ONNX domain (its contrib schema, opset 1 on).
  ['SimplifiedLayerNormalization', simplifiedLayerNormSpec],
  ['LRN', lrnSpec],
  ['InstanceNormalization', instanceNormSpec],
  ['GroupNormalization', groupNormSpec],
  ['MeanVarianceNormalization', meanVarianceNormSpec],
  ['RMSNormalization', rmsNormSpec],
  ...Object.keys(REDUCE_OP_OF).map((op) => [op, reduceSpec(op)] as [string, OperatorSpec]),
  ...EXTRA_REDUCTIONS.map((op) => [op, extraReductionSpec(op)] as [string, OperatorSpec]),
  ['ArgMax', argReduceSpec(false)],
  ['ArgMin', argReduceSpec(true)],
  ['CumSum', cumSumSpec],
  ['Trilu', triluSpec],
  ['DepthToSpace', depthToSpaceSpec],
  ['SpaceToDepth', spaceToDepthSpec],
  ['Transpose', transposeSpec],
  ['Concat', concatSpec],
  ['Split', splitSpec],
  ['Slice', sliceSpec],
  ['Gather', gatherSpec],
  ['Expand', expandSpec],
  ['Tile', tileSpec],
  ['Pad', padSpec],
  ['Reshape', reshapeSpec],
  ['Flatten', flattenSpec],
  ['Squeeze', squeezeLikeSpec('Squeeze')],
  ['Unsqueeze', squeezeLikeSpec('Unsqueeze')],
  ['Identity', identitySpec],
  ['Dropout', dropoutSpec],
  ['Shape', shapeSpec],
  ['Size', sizeSpec],
  ['ConstantOfShape', constantOfShapeSpec],
  ['Range', rangeSpec],
  ['GatherElements', gatherElementsSpec],
  ['GatherND', gatherNdSpec],
  ['OneHot', oneHotSpec],
  ['ScatterElements', scatterElementsSpec('ScatterElements')],
  ['Scatter', scatterElementsSpec('Scatter')],
  ['ScatterND', scatterNdSpec],
  ['TopK', topKSpec],
  ['NonZero', nonZeroSpec],
  ['Unique', uniqueSpec],
  ['TfIdfVectorizer', tfIdfVectorizerSpec],
  ['NonMaxSuppression', nonMaxSuppressionSpec],
  ['Resize', resizeSpec('Resize')],
  ['Upsample', resizeSpec('Upsample')],
  ['Einsum', einsumSpec],
  ['LpPool', lpPoolSpec],
  ['GlobalLpPool', globalLpPoolSpec],
  ['QuantizeLinear', quantizeLinearSpec],
  ['DequantizeLinear', dequantizeLinearSpec],
  ['DynamicQuantizeLinear', dynamicQuantizeLinearSpec],
  ['MatMulInteger', matMulIntegerSpec],
  ['QLinearMatMul', qLinearMatMulSpec],
  ['ConvInteger', convIntegerSpec],
  ['QLinearConv', qLinearConvSpec],
  ['DFT', dftSpec],
  ['STFT', stftSpec],
  ...WINDOW_OPS.map((op) => [op, windowSpec(op)] as [string, OperatorSpec]),
  ['MelWeightMatrix', melWeightMatrixSpec],
  ['NegativeLogLikelihoodLoss', negativeLogLikelihoodLossSpec],
  ['SoftmaxCrossEntropyLoss', softmaxCrossEntropyLossSpec],
  ['Hardmax', hardmaxSpec],
  ['Compress', compressSpec],
  ['EyeLike', eyeLikeSpec],
  ['ReverseSequence', reverseSequenceSpec],
  ['Det', detSpec],
  ['RNN', rnnSpec],
  ['GRU', gruSpec],
  ['LSTM', lstmSpec],
  ['GridSample', gridSampleSpec],
  ['RoiAlign', roiAlignSpec],
  ['MaxUnpool', maxUnpoolSpec],
  ['If', ifSpec],
  ['Loop', loopSpec],
  ['Scan', scanSpec],
]);

/** Attribute names the Constant operator accepts. */
const CONSTANT_ATTRIBUTES = ['value', 'value_float', 'value_floats', 'value_int', 'value_ints'];

function isDefaultDomain(node: NodeProto): boolean {
  return node.domain === '' || node.domain === 'ai.onnx';
}

/** The spec of a supported node; throws FAILED_PRECONDITION naming the operator and node otherwise. */
export function operatorSpec(node: NodeProto): OperatorSpec | undefined {
  if (node.domain === TRAINING_DOMAIN) {
    const spec = TRAINING_OPERATORS.get(node.opType);
    if (!spec) throw unsupported(node);
    return spec;
  }
  if (!isDefaultDomain(node)) return contribSpec(node);
  // Training BatchNormalization computes batch statistics, on the host; inference folds them.
  if (node.opType === 'BatchNormalization' && intAttribute(node, 'training_mode', 0) === 1) return batchNormTrainingSpec;
  if (node.opType === 'Constant') return undefined;
  const spec = OPERATORS.get(node.opType);
  if (!spec) throw unsupported(node);
  return spec;
}

/**
 * Throws FAILED_PRECONDITION unless the node's operator, attribute names, input / output counts
 * and attribute values are supported.
 */
export function checkSupported(node: NodeProto, opset: number): void {
  const spec = operatorSpec(node);
  const attributes = spec?.attributes ?? CONSTANT_ATTRIBUTES;
  for (const attribute of node.attribute) {
    if (!attributes.includes(attribute.name)) throw unsupported(node, `attribute '${attribute.name}'`);
  }
  const [minOutputs, maxOutputs] = spec?.outputs ?? [1, 1];
  const firstOutputMissing = spec?.firstOutputOptional ? !node.output.some(Boolean) : !node.output[0];
  if (node.output.length < minOutputs || node.output.length > maxOutputs || firstOutputMissing) {
    throw invalidNode(node, `has ${node.output.length} outputs, expected ${minOutputs === maxOutputs ? minOutputs : `${minOutputs} to ${maxOutputs}`}`);
  }
  if (!spec) return;
  const inputCount = presentInputCount(node);
  const [min, max] = spec.inputs;
  if (inputCount < min || node.input.length > max) {
    throw invalidNode(node, `has ${node.input.length} inputs, expected ${min === max ? min : `${min} to ${max}`}`);
  }
  spec.validate?.(node, opset);
}

/** Inputs up to the last non-empty name ('' marks an omitted optional input). */
function presentInputCount(node: NodeProto): number {
  let count = node.input.length;
  while (count > 0 && !node.input[count - 1]) count--;
  return count;
}
