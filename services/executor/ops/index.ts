/**
 * The supported ONNX operators: the contract every operator spec fulfils, the resolve table
 * from op type to spec, the attribute and parameter readers, and what the graph compiler's
 * fusion rules need to know about particular families.
 */
export {
  type BindingRef, type CpuAllocator, type DeviceOperator, type Epilogue, type GpuTraits, type LoadContext, type LoadInput, type Location, type NodeInput, type OperatorPlan, type OperatorSpec, type PlannedKernel,
} from './contract.ts';
export { checkSupported, operatorSpec } from './registry.ts';
export { outputTypesOf, provideControlFlowDevices, type ControlFlowDevices } from './control-flow.ts';
export {
  controlFlowLayout, declaredDatatype, declaredShape, graphAttributeOf, outerIndices, PARAMETER_SLOTS,
} from './control-flow-layout.ts';
export { floatAttribute, intAttribute, intsAttribute, invalidNode, unsupported } from './attributes.ts';
export { epilogueActivation } from './elementwise.ts';
export { foldBatchNorm } from './normalization.ts';
