/**
 * The executor's kernels: one descriptor per WGSL kernel family, each a pipeline variant
 * (what changes the shader) and a per-shape dispatch (workgroups and uniform bytes).
 */
export { type BindingKind, type Dispatch, type KernelVariant } from './kernel.ts';
export {
  convDispatch, convWeightsForGemm, denseWeightsForGemm, gemmVariants, matmulDispatch, type ConvProblem, type GemmAlgorithm, type MatMulProblem,
} from './matmul.ts';
export { convTransposeDispatch, convTransposeVariant, depthwiseDispatch, depthwiseVariant, poolDispatch, poolVariant } from './conv.ts';
export {
  BINARY_OPS, binaryDispatch, binaryVariant, channelAffineDispatch, channelAffineVariant, INTEGER_BINARY_OPS, unaryDispatch, unaryVariant, whereDispatch, whereVariant, type BinaryOpName, type UnaryMode,
} from './elementwise.ts';
export {
  COPY_MAX_RANK, copyDispatch, copyVariants, gatherDispatch, gatherVariant, PAD_MODES, padDispatch, padVariant, type CopyProblem, type PadMode,
} from './data.ts';
export {
  layerNormDispatch, layerNormVariants, reduceDispatch, reduceVariants, ROW_KERNEL_MAX_LENGTH, softmaxDispatch, softmaxVariants, type ReduceOp,
} from './reduce.ts';
export { argReduceDispatch, argReduceVariant, type AxisProblem, cumSumDispatch, cumSumVariant } from './axis-rows.ts';
export { triluDispatch, triluVariant } from './trilu.ts';
export { groupNormDispatch, groupNormVariants, type NormalizationProblem } from './group-norm.ts';
export { lrnDispatch, lrnVariant, type LrnAttributes } from './lrn.ts';
export { MATH_OPS, type MathOpName } from './math.ts';
export { FUSABLE_ACTIVATIONS, IDENTITY, INTEGER_UNARY_OPS, ONNX_UNARY, UNARY_OPS, unaryFunction, type UnaryFunction } from './unary-ops.ts';
