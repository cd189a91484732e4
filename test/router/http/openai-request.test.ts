/** OpenAI's request bodies as generation requests, each refusal naming its field. */
import { describe, expect, it } from 'vitest';
import { ParamError } from '../../../services/router/http/http-status.ts';
import { generationOfOpenAi, modelOfOpenAi } from '../../../services/router/http/openai-request.ts';

const paramOf = (work: () => unknown) => {
  try {
    work();
  } catch (error) {
    return error instanceof ParamError ? error.param : `not a ParamError: ${(error as Error).message}`;
  }
  throw new Error('no refusal');
};

const chat = (extra: object) => generationOfOpenAi('chat', { model: 'm', messages: [{ role: 'user', content: 'hi' }], ...extra });

describe('generationOfOpenAi', () => {
  it('reads a chat body: messages with text parts, sampling, stop, seed, user as the sticky parameter', () => {
    const { request, ask } = generationOfOpenAi('chat', {
      model: 'tiny:production', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }] }],
      temperature: 0.5, top_p: 0.9, max_completion_tokens: 12, stop: 'END', seed: 3, user: 'u7', stream: true, stream_options: { include_usage: true },
      logprobs: true, top_logprobs: 2,
    });
    expect(request).toMatchObject({
      modelName: 'tiny', modelVersion: 'production', parameters: { user: { stringParam: 'u7' } }, maxTokensField: 'max_completion_tokens',
      prompt: { kind: 'chat', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'ab' }] },
      settings: { maxNewTokens: 12, stop: ['END'], logprobs: true, topLogprobs: 2, sampling: { temperature: 0.5, topP: 0.9, seed: 3 } },
    });
    expect(ask).toEqual({ kind: 'chat', model: 'tiny:production', stream: true, includeUsage: true, logprobs: true, echo: false });
  });

  it('reads a completions body: text or token ids, logprobs as a count, 16 tokens by default', () => {
    const text = generationOfOpenAi('completion', { model: 'm', prompt: ['once'], logprobs: 2, echo: true });
    expect(text.request).toMatchObject({ prompt: { kind: 'text', text: 'once' }, defaultMaxNewTokens: 16, settings: { maxNewTokens: undefined, logprobs: true, topLogprobs: 2 } });
    expect(text.ask.echo).toBe(true);
    expect(generationOfOpenAi('completion', { model: 'm', prompt: [1, 2, 3] }).request.prompt).toEqual({ kind: 'tokens', ids: [1, 2, 3] });
  });

  it('refuses each bad field by name', () => {
    expect(paramOf(() => generationOfOpenAi('chat', { messages: [] }))).toBe('model');
    expect(paramOf(() => chat({ messages: [] }))).toBe('messages');
    expect(paramOf(() => chat({ messages: [{ content: 'x' }] }))).toBe('messages[0].role');
    expect(paramOf(() => chat({ messages: [{ role: 'user', content: [{ type: 'image_url' }] }] }))).toBe('messages[0].content[0]');
    expect(paramOf(() => chat({ temperature: 3 }))).toBe('temperature');
    expect(paramOf(() => chat({ top_p: 0 }))).toBe('top_p');
    expect(paramOf(() => chat({ max_tokens: 0 }))).toBe('max_tokens');
    expect(paramOf(() => chat({ n: 3 }))).toBe('n');
    expect(paramOf(() => chat({ stop: [1] }))).toBe('stop');
    expect(paramOf(() => chat({ top_logprobs: 2 }))).toBe('top_logprobs');
    expect(paramOf(() => chat({ tools: [] }))).toBe('tools');
    expect(paramOf(() => chat({ response_format: { type: 'json_object' } }))).toBe('response_format');
    expect(paramOf(() => chat({ logit_bias: { 1: 5 } }))).toBe('logit_bias');
    expect(paramOf(() => chat({ user: 5 }))).toBe('user');
    expect(paramOf(() => generationOfOpenAi('completion', { model: 'm', prompt: ['a', 'b'] }))).toBe('prompt');
    expect(paramOf(() => generationOfOpenAi('completion', { model: 'm', prompt: 'a', suffix: 'z' }))).toBe('suffix');
    expect(paramOf(() => generationOfOpenAi('completion', { model: 'm', prompt: 'a', logprobs: 9 }))).toBe('logprobs');
  });
});

describe('modelOfOpenAi', () => {
  it('splits name:version, registry names holding no colon', () => {
    expect(modelOfOpenAi('iris')).toEqual({ modelName: 'iris', modelVersion: '' });
    expect(modelOfOpenAi('iris:3')).toEqual({ modelName: 'iris', modelVersion: '3' });
  });
});
