/** The executor's model runtime: compile an ONNX model for a GPU, run batches on it. */
export { compileOnnxModel, PLAN_CACHE_CAPACITY, type CompiledModel } from './model-runtime.ts';
export type { Precision } from '../tensor/index.ts';
