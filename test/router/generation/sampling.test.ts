/** Generation settings from both APIs: defaults filled, every bad value INVALID_ARGUMENT naming its field. */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/index.ts';
import { settingsOfRequest, settingsOfTritonJson } from '../../../services/router/generation/sampling.ts';
import { maxNewTokensFor } from '../../../services/router/generation/generation-path.ts';

const request = { maxNewTokens: 0, stop: [], logprobs: false, topLogprobs: 0, ignoreEos: false };
const refusal = (pattern: RegExp) => expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(pattern) });

describe('settingsOfRequest (nexus.llm.v1)', () => {
  it('fills the model defaults for what is unset and keeps a temperature of 0 (greedy)', () => {
    expect(settingsOfRequest(request).sampling).toEqual({ temperature: 1, topP: 1, topK: 0, repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 0, seed: undefined });
    expect(settingsOfRequest({ ...request, sampling: { temperature: 0 }, seed: 7 }).sampling).toMatchObject({ temperature: 0, seed: 7 });
    expect(settingsOfRequest(request).maxNewTokens).toBeUndefined();
  });

  it.each([
    [{ sampling: { temperature: -1 } }, /sampling\.temperature/],
    [{ sampling: { topP: 0 } }, /sampling\.top_p/],
    [{ sampling: { frequencyPenalty: 3 } }, /sampling\.frequency_penalty/],
    [{ sampling: { repetitionPenalty: 0 } }, /sampling\.repetition_penalty/],
    [{ topLogprobs: 21, logprobs: true }, /top_logprobs/],
    [{ topLogprobs: 2 }, /top_logprobs needs logprobs/],
    [{ stop: [''] }, /stop\[0\] is empty/],
    [{ stop: Array.from({ length: 17 }, (_, index) => `s${index}`) }, /17 stop strings/],
    [{ stop: ['x'.repeat(257)] }, /stop\[0\] has 257 bytes/],
  ])('refuses %j', (change, pattern) => {
    expect(() => settingsOfRequest({ ...request, ...change })).toThrow(refusal(pattern));
  });
});

describe('settingsOfTritonJson (Triton vLLM sampling_parameters)', () => {
  it('reads numbers and numeric strings, a stop string or list, and vLLM\'s top_k of -1', () => {
    const settings = settingsOfTritonJson('{"temperature": "0.1", "top_p": 0.95, "top_k": -1, "max_tokens": "32", "stop": "\\n", "seed": 3}');
    expect(settings.sampling).toMatchObject({ temperature: 0.1, topP: 0.95, topK: 0, seed: 3 });
    expect(settings.maxNewTokens).toBe(32);
    expect(settings.stop).toEqual(['\n']);
    expect(settingsOfTritonJson('').maxNewTokens).toBe(16);
  });

  it.each([
    ['{"temperature": "hot"}', /sampling_parameters\.temperature must be a number/],
    ['{"best_of": 2}', /sampling_parameters\.best_of is not supported/],
    ['{"n": 2}', /sampling_parameters\.n must be 1/],
    ['{"max_tokens": 0}', /sampling_parameters\.max_tokens/],
    ['{"stop": [1]}', /sampling_parameters\.stop must be a string or a list/],
    ['[1]', /must be a JSON object/],
    ['{', /is not JSON/],
  ])('refuses %s', (json, pattern) => {
    expect(() => settingsOfTritonJson(json)).toThrow(refusal(pattern));
  });
});

describe('maxNewTokensFor', () => {
  const settings = (maxNewTokens: number | undefined) => ({ settings: { ...settingsOfRequest(request), maxNewTokens }, defaultMaxNewTokens: 256, maxTokensField: 'max_new_tokens' });
  it('cuts the default to the context, refuses an explicit value past it naming the field', () => {
    expect(maxNewTokensFor(settings(undefined), 1000, 1024)).toBe(24);
    expect(maxNewTokensFor(settings(undefined), 10, 1024)).toBe(256);
    expect(maxNewTokensFor(settings(24), 1000, 1024)).toBe(24);
    expect(() => maxNewTokensFor(settings(25), 1000, 1024)).toThrow(refusal(/max_new_tokens is 25.*at most 24/));
    expect(() => maxNewTokensFor(settings(undefined), 1024, 1024)).toThrow(refusal(/the prompt has 1024 tokens/));
  });
});
