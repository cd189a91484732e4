/**
 * The contract between the registry and the router: the signature the registry records for a
 * checkpoint directory is the one the router serves by text generation, and only causal-LM
 * checkpoints get it.
 */
import { describe, expect, it } from 'vitest';
import type { ManifestEntry } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { checkpointSignature } from '../../../services/registry/core/checkpoint-signature.ts';
import { isTextGenerationVersion } from '../../../services/router/generation/text-generation-model.ts';

const file = (path: string, sizeBytes = 100): ManifestEntry => ({ path, sha256: 'a'.repeat(64), sizeBytes });
const checkpoint = [file('config.json'), file('model.safetensors'), file('tokenizer.json')];
const generates = (files: ManifestEntry[], config: object | string | undefined, format = 'safetensors') =>
  isTextGenerationVersion({ format, signature: checkpointSignature(files, typeof config === 'object' ? JSON.stringify(config) : config) });

describe('a checkpoint directory\'s signature', () => {
  it('is text generation for a causal-LM architecture, or a decoder-only model_type without one', () => {
    expect(generates(checkpoint, { architectures: ['LlamaForCausalLM'] })).toBe(true);
    expect(generates(checkpoint, { architectures: ['GPT2LMHeadModel'], model_type: 'gpt2' })).toBe(true);
    expect(generates(checkpoint, { model_type: 'qwen2' })).toBe(true);
  });

  it('is none for an encoder, a config naming no known family, unreadable JSON, or a directory without weights', () => {
    expect(generates(checkpoint, { architectures: ['BertModel'], model_type: 'bert' })).toBe(false);
    expect(generates(checkpoint, { hidden_size: 4 })).toBe(false);
    expect(generates(checkpoint, '{not json')).toBe(false);
    expect(generates([file('config.json'), file('weights.bin')], { architectures: ['LlamaForCausalLM'] })).toBe(false);
    expect(generates([file('config.json', 2 * 1024 * 1024), file('model.safetensors')], { architectures: ['LlamaForCausalLM'] })).toBe(false);
  });

  it('is not read as text generation on a single-file (ONNX) version', () => {
    expect(generates(checkpoint, { architectures: ['LlamaForCausalLM'] }, 'onnx')).toBe(false);
  });
});
