/**
 * The signature of a directory model. A Hugging Face checkpoint of a causal language model
 * (config.json naming a *ForCausalLM or *LMHeadModel architecture, weights in safetensors) is
 * recorded with the signature of Triton's vLLM backend, which is how the router knows to serve it
 * by text generation (router/generation/text-generation-model.ts reads it) and what ModelMetadata
 * shows Triton clients. Any other directory has no signature. Pure.
 */
import type { ManifestEntry, ModelSignature } from '../../protocol/generated/nexus/registry/v1/registry.ts';

/** Largest config.json read to decide, in bytes. */
export const MAX_CONFIG_JSON_BYTES = 1024 * 1024;

export const TEXT_GENERATION_SIGNATURE: ModelSignature = {
  inputs: [
    { name: 'text_input', datatype: 'BYTES', shape: [1] },
    { name: 'stream', datatype: 'BOOL', shape: [1] },
    { name: 'sampling_parameters', datatype: 'BYTES', shape: [1] },
    { name: 'exclude_input_in_output', datatype: 'BOOL', shape: [1] },
  ],
  outputs: [{ name: 'text_output', datatype: 'BYTES', shape: [-1] }],
};

const NO_SIGNATURE: ModelSignature = { inputs: [], outputs: [] };
const CAUSAL_LM_ARCHITECTURE = /(ForCausalLM|LMHeadModel)$/;
/** Decoder-only families, for a config that names its model_type but no architecture. */
const CAUSAL_LM_TYPES = [
  'gpt2', 'gptj', 'gpt_neox', 'gpt_bigcode', 'llama', 'mistral', 'mixtral', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'gemma3_text', 'phi', 'phi3',
  'opt', 'bloom', 'falcon', 'starcoder2', 'olmo', 'smollm3',
];

/** Whether the directory is a checkpoint whose config.json is worth reading: it has one, and safetensors weights. */
export function mayBeCheckpoint(files: readonly ManifestEntry[]): ManifestEntry | undefined {
  const config = files.find((file) => file.path === 'config.json');
  const hasWeights = files.some((file) => file.path.endsWith('.safetensors'));
  return config && hasWeights && config.sizeBytes <= MAX_CONFIG_JSON_BYTES ? config : undefined;
}

/**
 * The directory's signature from its config.json (undefined: none, or too large to read): text
 * generation when the config names a causal-LM architecture (as transformers' save_pretrained
 * writes it), or no architecture but a decoder-only model_type; nothing for any other config.
 */
export function checkpointSignature(files: readonly ManifestEntry[], configJson: string | undefined): ModelSignature {
  if (configJson === undefined || !mayBeCheckpoint(files)) return NO_SIGNATURE;
  let config: unknown;
  try {
    config = JSON.parse(configJson);
  } catch {
    return NO_SIGNATURE;
  }
  if (typeof config !== 'object' || config === null) return NO_SIGNATURE;
  const { architectures, model_type: modelType } = config as { architectures?: unknown; model_type?: unknown };
  const causal = architectures === undefined
    ? typeof modelType === 'string' && CAUSAL_LM_TYPES.includes(modelType)
    : Array.isArray(architectures) && architectures.some((name) => typeof name === 'string' && CAUSAL_LM_ARCHITECTURE.test(name));
  return causal ? TEXT_GENERATION_SIGNATURE : NO_SIGNATURE;
}
