/**
 * The graph compiler: from a decoded ONNX model to the steps the runtime runs, with no GPU
 * involved (placement and constant folding, fusion, device operators), and the per-shape
 * layout of a plan (shapes, storage, the memory plan, dispatches).
 */
export { compileGraph, type CompiledGraph, type GraphCompileOptions } from './compile-graph.ts';
export { MAX_OPSET, placeModel, type PlacedModel } from './placement.ts';
export { topologicalOrder, type Graph, type GraphNode, type NodeFusion } from './graph.ts';
export { fuseGraph, type FuseOptions } from './fusion.ts';
export type { FusionContext, FusionRule } from './fusion-rule.ts';
export { foldBatchNormIntoConv } from './fold-batchnorm-into-conv.ts';
export { fuseEpilogues } from './fuse-epilogue.ts';
export { fuseSoftmaxScale } from './fuse-softmax-scale.ts';
export { fuseTransposeIntoMatMul } from './fuse-transpose-into-matmul.ts';
export { buildSteps, type DeviceStep, type HostStep, type Step, type StepContext } from './steps.ts';
export { probeShapes, walkShapes, type ProbeShapes, type ShapeWalk } from './shape-walk.ts';
export {
  bindingTarget, bufferBytes, planLayout, storageType, type DeviceLimits, type PlanLayout, type Storage,
} from './plan-layout.ts';
export { planMemory, type MemoryPlan, type TensorLifetime } from './memory-planner.ts';
