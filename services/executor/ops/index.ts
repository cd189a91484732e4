/**
 * The supported ONNX operators: the contract every operator spec fulfils, the resolve table
 * from op type to spec, the attribute and parameter readers, and what the graph compiler's
 * fusion rules need to know about particular families.
 */
export {
  type BindingRef, type CpuContext, type CpuOp, type DeviceOperator, type Epilogue, type GpuTraits, type LoadContext, type LoadInput,
  type Location, type NodeInput, type OperatorPlan, type OperatorSpec, type PlannedKernel, type TypeContext,
} from './contract.ts';
export { checkSupported, operatorSpec, SUPPORTED_OPERATORS } from './registry.ts';
export {
  booleanAttribute, enumAttribute, floatAttribute, intAttribute, intsAttribute, invalidNode, stringAttribute, tensorAttribute, unsupported,
} from './attributes.ts';
export { parameterValue, type ParameterInputs } from './parameters.ts';
export { epilogueActivation } from './elementwise.ts';
export { foldBatchNorm } from './normalization.ts';
export { biasStrides, gemmShapes, matmulShapes, type GemmAttributes } from './matmul-shapes.ts';
