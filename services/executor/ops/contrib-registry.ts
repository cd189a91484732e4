/**
 * The com.microsoft (onnxruntime contrib) operators the executor runs, each version 1 of that
 * domain (the only version ORT defines of them). Any other operator of that domain, or of any
 * domain other than ONNX's, fails the load naming the domain, the operator and the node.
 */
import type { NodeProto } from '../../onnx/model.ts';
import { unsupported } from './attributes.ts';
import type { OperatorSpec } from './contract.ts';
import { gridSampleSpec } from './grid-sample.ts';
import { triluSpec } from './layout.ts';
import { dequantizeLinearSpec, quantizeLinearSpec } from './quantization.ts';
import { biasAddSpec, biasGeluSpec, biasSoftmaxSpec, fastGeluSpec, geluSpec, quickGeluSpec } from './contrib-activations.ts';
import { attentionSpec, multiHeadAttentionSpec } from './contrib-attention.ts';
import { fusedConvSpec, fusedGemmSpec } from './contrib-fused-activation.ts';
import { fusedMatMulSpec } from './contrib-fused-matmul.ts';
import { groupQueryAttentionSpec } from './contrib-group-query-attention.ts';
import { matMulNBitsSpec } from './contrib-matmul-nbits.ts';
import { rotaryEmbeddingSpec } from './contrib-rotary.ts';
import {
  qLinearAddSpec, qLinearAveragePoolSpec, qLinearConcatSpec, qLinearGlobalAveragePoolSpec, qLinearLeakyReluSpec, qLinearMulSpec, qLinearSigmoidSpec,
} from './contrib-qlinear.ts';
import { embedLayerNormSpec, skipLayerNormSpec, skipSimplifiedLayerNormSpec } from './contrib-normalization.ts';

/** onnxruntime's contrib domain. */
const MICROSOFT_DOMAIN = 'com.microsoft';

const CONTRIB_OPERATORS: ReadonlyMap<string, OperatorSpec> = new Map<string, OperatorSpec>([
  ['Gelu', geluSpec],
  ['FastGelu', fastGeluSpec],
  ['BiasGelu', biasGeluSpec],
  ['QuickGelu', quickGeluSpec],
  ['BiasAdd', biasAddSpec],
  ['BiasSoftmax', biasSoftmaxSpec],
  ['SkipLayerNormalization', skipLayerNormSpec],
  ['SkipSimplifiedLayerNormalization', skipSimplifiedLayerNormSpec],
  ['EmbedLayerNormalization', embedLayerNormSpec],
  ['FusedMatMul', fusedMatMulSpec],
  // FusedMatMul's first name.
  ['TransposeMatMul', { ...fusedMatMulSpec, attributes: ['alpha', 'transA', 'transB'] }],
  ['FusedConv', fusedConvSpec],
  ['FusedGemm', fusedGemmSpec],
  ['MatMulNBits', matMulNBitsSpec],
  ['Attention', attentionSpec],
  ['MultiHeadAttention', multiHeadAttentionSpec],
  ['GroupQueryAttention', groupQueryAttentionSpec],
  ['RotaryEmbedding', rotaryEmbeddingSpec],
  // com.microsoft's Trilu is ONNX's (inputs X and k, attribute upper); its QuantizeLinear and
  // DequantizeLinear are ONNX's per-tensor and per-axis forms (axis only), which quantization
  // tools emit for 16-bit types.
  ['Trilu', triluSpec],
  // com.microsoft's GridSample is ONNX's GridSample-16 (bilinear / nearest / bicubic, 4-D), which exporters used before opset 16.
  ['GridSample', {
    ...gridSampleSpec, validate: (node) => gridSampleSpec.validate?.(node, 16), device: (context) => gridSampleSpec.device!({ ...context, opset: 16 }),
  }],
  ['QuantizeLinear', { ...quantizeLinearSpec, attributes: ['axis'] }],
  ['QLinearAdd', qLinearAddSpec],
  ['QLinearMul', qLinearMulSpec],
  ['QLinearGlobalAveragePool', qLinearGlobalAveragePoolSpec],
  ['QLinearAveragePool', qLinearAveragePoolSpec],
  ['QLinearConcat', qLinearConcatSpec],
  ['QLinearLeakyRelu', qLinearLeakyReluSpec],
  ['QLinearSigmoid', qLinearSigmoidSpec],
  ['DequantizeLinear', { ...dequantizeLinearSpec, attributes: ['axis'] }],
]);

/** The spec of a node outside ONNX's domain; FAILED_PRECONDITION naming the domain, operator and node when there is none. */
export function contribSpec(node: NodeProto): OperatorSpec {
  const spec = node.domain === MICROSOFT_DOMAIN ? CONTRIB_OPERATORS.get(node.opType) : undefined;
  if (!spec) throw unsupported(node);
  return spec;
}
