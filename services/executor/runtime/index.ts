/** The executor's model runtime: compile an ONNX model for a GPU, run batches on it. */
export {
  compileOnnxModel, gemmAlgorithmFor, PLAN_CACHE_CAPACITY, requestedPrecision, type CompiledModel, type CompileOptions, type RunResult,
} from './model-runtime.ts';
export { SUPPORTED_OPERATORS } from '../ops/index.ts';
export type { Precision } from '../tensor/index.ts';
