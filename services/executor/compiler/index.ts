/**
 * The graph compiler: from a decoded ONNX model to the steps the runtime runs, with no GPU
 * involved (placement and constant folding, fusion, device operators), and the per-shape
 * layout of a plan (shapes, storage, the memory plan, dispatches).
 */
export { compileGraph, type CompiledGraph } from './compile-graph.ts';
export { BUDGET_ENV, DEFAULT_COMPILE_BUDGETS, resolveBudgets, type CompileBudgets } from './compile-budgets.ts';
export { placeModel, type PlacedModel } from './placement.ts';
export { topologicalOrder, type Graph } from './graph.ts';
export type { FusionContext } from './fusion-rule.ts';
export { foldBatchNormIntoConv } from './fold-batchnorm-into-conv.ts';
export { fuseEpilogues } from './fuse-epilogue.ts';
export { fuseSoftmaxScale } from './fuse-softmax-scale.ts';
export { fuseTransposeIntoMatMul } from './fuse-transpose-into-matmul.ts';
export { buildSteps, type DeviceStep } from './steps.ts';
export { probeShapes, walkShapes } from './shape-walk.ts';
export { bindingTarget, bufferBytes, planLayout, storageType, type PlanLayout, type SegmentReadback } from './plan-layout.ts';
export { segmentationOf } from './segments.ts';
export { planMemory, type TensorLifetime } from './memory-planner.ts';
