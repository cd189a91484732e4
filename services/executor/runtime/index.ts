/** The executor's model runtime: compile an ONNX model for a GPU, run batches on it. */
export { compileOnnxModel, PLAN_CACHE_CAPACITY, type CompiledModel, type RunResult } from './model-runtime.ts';
export { SUPPORTED_OPERATORS } from './operators.ts';
