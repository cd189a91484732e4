/**
 * Host-side sampling without a GPU: greedy ties, temperature, top-k and top-p against their
 * definitions, Hugging Face's repetition penalty and OpenAI's frequency and presence penalties,
 * log-probabilities, seeded reproducibility, and parameter checks.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/index.ts';
import { chooseToken, samplingSettingsOf, uniformFor, type SamplingSettings } from '../../../services/executor/llm/sampling.ts';
import type { SamplingParameters } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';

const parameters = (overrides: Partial<SamplingParameters>): SamplingParameters => ({
  temperature: 0, topK: 0, topP: 0, repetitionPenalty: 0, frequencyPenalty: 0, presencePenalty: 0, ...overrides,
});
const settings = (overrides: Partial<SamplingParameters>, logprobs = false, top = 0): SamplingSettings => samplingSettingsOf(parameters(overrides), logprobs, top, 7n);

/** How often each token is drawn over `draws` steps. */
function frequencies(logits: Float32Array, chosen: SamplingSettings, draws: number): number[] {
  const counts = new Array(logits.length).fill(0);
  for (let step = 0; step < draws; step++) counts[chooseToken(logits, chosen, [], 0, step).token] += 1;
  return counts.map((count) => count / draws);
}

const probabilities = [0.5, 0.3, 0.15, 0.05];
const logits = Float32Array.from(probabilities, Math.log);

describe('sampling', () => {
  it('is greedy at temperature 0, taking the lowest id on ties', () => {
    expect(chooseToken(Float32Array.from([1, 3, 3, 2]), settings({}), [], 0, 0).token).toBe(1);
  });

  it('draws in proportion to softmax(logits / temperature)', () => {
    const observed = frequencies(logits, settings({ temperature: 1, seed: 1 }), 4000);
    observed.forEach((frequency, token) => expect(Math.abs(frequency - probabilities[token])).toBeLessThan(0.03));
    // Temperature 2 flattens: p ∝ sqrt(p0).
    const flat = probabilities.map(Math.sqrt);
    const total = flat.reduce((a, b) => a + b, 0);
    frequencies(logits, settings({ temperature: 2, seed: 2 }), 4000).forEach((frequency, token) => expect(Math.abs(frequency - flat[token] / total)).toBeLessThan(0.03));
  });

  it('keeps only the top k, and the smallest set reaching top_p, renormalized', () => {
    const topK = frequencies(logits, settings({ temperature: 1, topK: 2, seed: 3 }), 3000);
    expect(topK[2] + topK[3]).toBe(0);
    expect(Math.abs(topK[0] - 0.5 / 0.8)).toBeLessThan(0.03);
    // 0.5 + 0.3 reaches 0.75: tokens 0 and 1 only.
    const topP = frequencies(logits, settings({ temperature: 1, topP: 0.75, seed: 4 }), 3000);
    expect(topP[2] + topP[3]).toBe(0);
    expect(Math.abs(topP[1] - 0.3 / 0.8)).toBeLessThan(0.03);
    expect(frequencies(logits, settings({ temperature: 5, topK: 1, seed: 5 }), 50)).toEqual([1, 0, 0, 0]);
  });

  it('gives the same tokens for the same seed and step, and other tokens for another seed', () => {
    const chosen = settings({ temperature: 1, seed: 42 });
    const run = (seeded: SamplingSettings) => Array.from({ length: 40 }, (_, step) => chooseToken(logits, seeded, [], 0, step).token);
    expect(run(chosen)).toEqual(run(settings({ temperature: 1, seed: 42 })));
    expect(run(chosen)).not.toEqual(run(settings({ temperature: 1, seed: 43 })));
    expect(uniformFor(42n, 3)).toBe(uniformFor(42n, 3));
    expect(uniformFor(42n, 3)).not.toBe(uniformFor(42n, 4));
  });

  it('applies the repetition penalty over prompt and output, and frequency and presence over the output', () => {
    // Token 1 (positive logit, divided) and token 2 (negative, multiplied) occurred; 2.5 / 2 < 2 makes token 0 win.
    const row = Float32Array.from([2, 2.5, -1, 0]);
    const penalized = chooseToken(row, settings({ repetitionPenalty: 2 }, true), [1, 2], 2, 0);
    expect(penalized.token).toBe(0);
    const logSum = Math.log(Math.exp(2) + Math.exp(1.25) + Math.exp(-2) + Math.exp(0));
    expect(penalized.logprob).toBeCloseTo(2 - logSum, 6);
    // Frequency 0.4 per occurrence plus presence 0.3 once, for generated tokens only (after the prompt of 1).
    const counted = chooseToken(Float32Array.from([2, 2.5, 0, 0]), settings({ frequencyPenalty: 0.4, presencePenalty: 0.3 }, true, 2), [1, 1, 1], 1, 0);
    expect(counted.token).toBe(0);
    expect(counted.top.map((entry) => entry.token)).toEqual([0, 1]);
    const penalizedLogit = 2.5 - 0.4 * 2 - 0.3;
    const sum = Math.log(Math.exp(2) + Math.exp(penalizedLogit) + 2);
    expect(counted.top[1].logprob).toBeCloseTo(penalizedLogit - sum, 6);
  });

  it('refuses parameters out of range, naming the field', () => {
    const refused: Array<[Partial<SamplingParameters>, RegExp]> = [
      [{ temperature: -1 }, /sampling.temperature is -1/],
      [{ topP: 1.5 }, /sampling.top_p is 1.5/],
      [{ repetitionPenalty: -2 }, /sampling.repetition_penalty is -2/],
      [{ frequencyPenalty: 3 }, /sampling.frequency_penalty is 3/],
      [{ temperature: Number.NaN }, /sampling.temperature is NaN/],
    ];
    for (const [overrides, message] of refused) {
      expect(() => settings(overrides)).toThrow(message);
      expect(() => settings(overrides)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT }));
    }
    expect(() => samplingSettingsOf(undefined, true, 21, 1n)).toThrow(/top_logprobs is 21; at most 20/);
  });
});
