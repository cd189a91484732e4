/**
 * Text generation against an independent float64 reference (reference.ts): small random GPT-2
 * and Llama-family checkpoints with odd sizes, every logits row of a whole greedy generation
 * within fp32 tolerance, and the greedy tokens equal token for token. Variants: learned and
 * rotary positions (default, linear and llama3 scaling), grouped-query attention, tied and
 * untied heads, Qwen2's q/k/v biases, MLP biases, explicit head_dim, F16 and BF16 weights,
 * sharded safetensors, weight matrices split over several bindings, and both projection kernels;
 * and fp16 mode (weights and KV cache stored as f16) within its own tolerance.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import type { TextGenerationLoadOptions } from '../../../services/executor/llm/load-model.ts';
import { buildCheckpoint, type CheckpointSpec } from './checkpoints.ts';
import { expectLogitsClose, loadCheckpoint, runSequence, startRequest } from './generation.ts';
import { referenceGreedy, referenceLogitsAlong } from './reference.ts';

let gpu: GpuContext;
beforeAll(async () => {
  gpu = await openGpu();
});
afterAll(() => gpu?.destroy());

const GPT2: CheckpointSpec = { family: 'gpt2', hidden: 72, layers: 2, heads: 3, inter: 100, vocab: 97, maxPositions: 64, seed: 1 };
const LLAMA: CheckpointSpec = { family: 'llama', hidden: 72, layers: 2, heads: 3, kvHeads: 1, inter: 92, vocab: 101, maxPositions: 64, seed: 2 };

const CASES: Array<[string, CheckpointSpec, Partial<TextGenerationLoadOptions>?]> = [
  ['GPT-2, tied head', GPT2],
  ['GPT-2, untied head, prefixed names, scale_attn_by_inverse_layer_idx, BF16 weights',
    { ...GPT2, hidden: 36, heads: 4, tied: false, prefixed: true, dtype: 'BF16', extra: { scale_attn_by_inverse_layer_idx: true }, seed: 3 }],
  ['GPT-2, F16 weights in two shards, the lm_head over several bindings', { ...GPT2, dtype: 'F16', shards: 2, seed: 4 }, { weightChunkBytes: 4096 }],
  ['Llama, grouped-query attention (3 heads, 1 kv head), untied head', LLAMA],
  ['Llama, linear rope scaling, tied head, plain projection kernel',
    { ...LLAMA, kvHeads: 3, tied: true, extra: { rope_scaling: { type: 'linear', factor: 2 }, rope_theta: 500 }, seed: 5 }, { algorithm: 'plain' }],
  ['Llama, llama3 rope scaling, head_dim 16, attention and MLP biases, split bindings', {
    ...LLAMA, heads: 6, kvHeads: 2, seed: 6,
    extra: {
      head_dim: 16, attention_bias: true, mlp_bias: true, rope_theta: 100,
      rope_scaling: { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
    },
  }, { weightChunkBytes: 8192 }],
  ['Qwen2 (q/k/v biases), F16 weights', { ...LLAMA, architecture: 'Qwen2ForCausalLM', dtype: 'F16', seed: 7 }],
];

describe('generation against the float64 reference', () => {
  it.each(CASES)('%s', async (_name, spec, options) => {
    const checkpoint = buildCheckpoint(spec);
    const logits: Float32Array[] = [];
    const model = await loadCheckpoint(gpu, checkpoint, { ...options, onLogits: (_id, step, row) => (logits[step] = row) });
    try {
      const prompt = [5, 17, 3, 42, 8, 60, 1, 29, 33, 12, 7, 50, 2, 19, 77, 23, 4, 11];
      const generate = 20;
      const { tokens, last } = await runSequence(model, startRequest(prompt, generate));
      const reference = referenceGreedy(checkpoint.config, checkpoint.tensors, prompt, generate);
      expect(last).toMatchObject({ finishReason: 'length', promptTokens: prompt.length, generatedTokens: generate });
      expect(logits).toHaveLength(generate);
      reference.logits.forEach((row, step) => expectLogitsClose(`step ${step}`, logits[step], row));
      expect(tokens).toEqual(reference.tokens);
      // Random models tend to repeat; the test is only worth something if the tokens vary.
      expect(new Set(tokens).size).toBeGreaterThan(2);
    } finally {
      model.dispose();
    }
  });
});

/**
 * FP16 mode: every weight and cached key and value is rounded to f16 (11 significant bits), so
 * logits are within 2e-2 of max(|reference|, RMS of the row); greedy tokens may then part from
 * the reference's at a near tie, so the reference follows our tokens.
 */
function expectFp16Close(label: string, ours: Float32Array, reference: Float64Array): void {
  const rms = Math.sqrt(reference.reduce((sum, value) => sum + value * value, 0) / reference.length);
  let worst = 0;
  for (let i = 0; i < reference.length; i++) worst = Math.max(worst, Math.abs(ours[i] - reference[i]) / Math.max(Math.abs(reference[i]), rms));
  expect(worst, `${label}: worst error relative to max(|reference|, rms)`).toBeLessThanOrEqual(2e-2);
}

describe('fp16 mode', () => {
  it.each([['GPT-2', GPT2], ['Llama (GQA)', LLAMA]])('%s: logits along its own tokens within the fp16 tolerance', async (_name, spec) => {
    if (!gpu.hasF16) throw new Error('this adapter has no shader-f16; fp16 mode falls back to fp32 there');
    const checkpoint = buildCheckpoint(spec);
    const logits: Float32Array[] = [];
    const model = await loadCheckpoint(gpu, checkpoint, { precision: 'fp16', onLogits: (_id, step, row) => (logits[step] = row) });
    try {
      expect(model.precision).toBe('fp16');
      const prompt = [4, 8, 15, 16, 23, 42, 9, 1];
      const { tokens } = await runSequence(model, startRequest(prompt, 12));
      referenceLogitsAlong(checkpoint.config, checkpoint.tensors, prompt, tokens).forEach((row, step) => expectFp16Close(`step ${step}`, logits[step], row));
    } finally {
      model.dispose();
    }
  });
});
