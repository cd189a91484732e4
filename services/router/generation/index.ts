/**
 * Text generation: the path of a generation request (route, tokenize, admit by KV capacity, run
 * the sequence on an executor, detokenize and match stop strings), the tokenizers of checkpoint
 * versions, the scheduler of sequences over the executors' KV caches, and Triton's vLLM
 * convention for ModelInfer and ModelStreamInfer.
 */
export { createGenerationPath, type GenerationChunk, type GenerationPath, type Prompt } from './generation-path.ts';
export { grpcBlobReader, TokenizerCache } from './model-files.ts';
export { prometheusGenerationReporter } from './prometheus-generation.ts';
export { settingsOfRequest } from './sampling.ts';
export { SequenceScheduler } from './sequence-scheduler.ts';
export { tritonDispatch, type TritonDispatch } from './triton-vllm.ts';
