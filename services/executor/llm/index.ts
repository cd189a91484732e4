/**
 * Text generation: causal language models from Hugging Face checkpoint directories (GPT-2 and
 * the Llama family) run natively with the WGSL kernels of shaders/llm/, a paged KV cache and
 * continuous batching. The service loads one with loadTextGenerationModel and starts sequences
 * on it.
 */
export { storedCheckpoint } from './checkpoint.ts';
export { loadTextGenerationModel } from './load-model.ts';
export { TextGenerationModel, type SequenceHandle } from './text-generation-model.ts';
