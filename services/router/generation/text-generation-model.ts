/**
 * How the router knows a version is a causal language model before any executor loads it: the
 * registry records a checkpoint directory (config.json and safetensors weights, a causal-LM
 * architecture) with the signature of Triton's vLLM backend (registry/core/checkpoint-signature.ts
 * writes it), which is also what ModelMetadata shows Triton clients:
 *
 *   inputs   text_input BYTES [1], stream BOOL [1], sampling_parameters BYTES [1], exclude_input_in_output BOOL [1]
 *   outputs  text_output BYTES [-1]
 */
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';

export const TEXT_INPUT = 'text_input';
export const TEXT_OUTPUT = 'text_output';

/** Formats of a checkpoint directory (one file, an ONNX graph, is never one). */
const CHECKPOINT_FORMATS = ['safetensors', 'directory'];

/** True for a checkpoint version recorded with the text-generation signature. Pure. */
export function isTextGenerationVersion(version: Pick<ModelVersion, 'signature' | 'format'>): boolean {
  const signature = version.signature;
  return !!signature && CHECKPOINT_FORMATS.includes(version.format)
    && signature.inputs.some((input) => input.name === TEXT_INPUT && input.datatype === 'BYTES')
    && signature.outputs.some((output) => output.name === TEXT_OUTPUT && output.datatype === 'BYTES');
}
