/**
 * OpenAI's completions and chat completions bodies, checked field by field, as generation
 * requests; and the generation's chunks as OpenAI's answers (whole, or `chat.completion.chunk` /
 * `text_completion` events). Pure: every refusal is a ParamError naming the field, which the error
 * object carries as `param`.
 *
 * `model` is the model's name, optionally with a version after a colon (`tiny-gpt:3`,
 * `tiny-gpt:production`; registry names never hold one). `user` is also the request parameter an
 * A/B split can be sticky by. Extensions beyond OpenAI's fields, as vLLM takes them: top_k,
 * repetition_penalty, ignore_eos.
 */
import type { GenerationChunk, GenerationPath, Prompt } from '../generation/index.ts';
import { settingsOfRequest } from '../generation/index.ts';
import { invalidParam } from './http-status.ts';

type GenerationRequest = Parameters<GenerationPath['generate']>[0];
type OutputToken = GenerationChunk['tokens'][number];

export type OpenAiKind = 'chat' | 'completion';

/** What a request asked of its answer besides the generation itself. */
export interface OpenAiAsk {
  kind: OpenAiKind;
  /** The model as the client named it, echoed in every answer. */
  model: string;
  stream: boolean;
  includeUsage: boolean;
  logprobs: boolean;
  /** Completions only: the prompt goes before the generated text. */
  echo: boolean;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function numberField(body: Record<string, unknown>, field: string, min: number, max: number): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) throw invalidParam(field, `${field} must be a number from ${min} to ${max}`);
  return value;
}

/** A number above 0 and at most `max` (top_p, repetition_penalty). */
function positiveField(body: Record<string, unknown>, field: string, max: number): number | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > max) throw invalidParam(field, `${field} must be a number above 0 and at most ${max}`);
  return value;
}

function integerField(body: Record<string, unknown>, field: string, min: number, max: number): number | undefined {
  const value = numberField(body, field, min, max);
  if (value !== undefined && !Number.isInteger(value)) throw invalidParam(field, `${field} must be an integer from ${min} to ${max}`);
  return value;
}

function booleanField(body: Record<string, unknown>, field: string): boolean | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalidParam(field, `${field} must be true or false`);
  return value;
}

function stopOf(body: Record<string, unknown>): string[] {
  const stop = body.stop;
  if (stop === undefined || stop === null) return [];
  if (typeof stop === 'string') return [stop];
  if (Array.isArray(stop) && stop.every((entry) => typeof entry === 'string')) return stop as string[];
  throw invalidParam('stop', 'stop must be a string or a list of strings');
}

/** Fields that change what the answer means and are not served here: refused rather than ignored. */
const UNSUPPORTED: Record<OpenAiKind, readonly string[]> = {
  chat: ['tools', 'tool_choice', 'functions', 'function_call', 'audio', 'modalities', 'prediction'],
  completion: ['suffix'],
};

/** The text of one chat message's content: a string, or a list of text parts. */
function contentOf(content: unknown, index: number): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content.map((part, partIndex) => {
      if (isObject(part) && part.type === 'text' && typeof part.text === 'string') return part.text;
      throw invalidParam(`messages[${index}].content[${partIndex}]`, `messages[${index}].content[${partIndex}] must be a text part ({"type": "text", "text": ...}); this server takes text only`);
    }).join('');
  }
  throw invalidParam(`messages[${index}].content`, `messages[${index}].content must be a string or a list of text parts`);
}

function promptOf(kind: OpenAiKind, body: Record<string, unknown>): Prompt {
  if (kind === 'chat') {
    const messages = body.messages;
    if (!Array.isArray(messages) || messages.length === 0) throw invalidParam('messages', 'messages must be a non-empty list of {"role", "content"}');
    return {
      kind: 'chat',
      messages: messages.map((message, index) => {
        if (!isObject(message) || typeof message.role !== 'string' || message.role === '') throw invalidParam(`messages[${index}].role`, `messages[${index}] must have a role`);
        return { role: message.role, content: contentOf(message.content ?? '', index) };
      }),
    };
  }
  let prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && (typeof prompt[0] === 'string' || Array.isArray(prompt[0]))) prompt = prompt[0];
  if (typeof prompt === 'string') return { kind: 'text', text: prompt };
  if (Array.isArray(prompt) && prompt.length > 0 && prompt.every((id) => Number.isInteger(id) && id >= 0 && id < 2 ** 32)) return { kind: 'tokens', ids: prompt as number[] };
  throw invalidParam('prompt', 'prompt must be a string or a list of token ids (one prompt per request)');
}

/** The model name and version of OpenAI's `model` ("name" or "name:version"). */
export function modelOfOpenAi(model: unknown): { modelName: string; modelVersion: string } {
  if (typeof model !== 'string' || model === '') throw invalidParam('model', 'model is required: the name of a text-generation model, optionally name:version');
  const at = model.indexOf(':');
  return at < 0 ? { modelName: model, modelVersion: '' } : { modelName: model.slice(0, at), modelVersion: model.slice(at + 1) };
}

/** The generation a completions (`completion`) or chat completions (`chat`) body asks for. */
export function generationOfOpenAi(kind: OpenAiKind, body: unknown): { request: GenerationRequest; ask: OpenAiAsk } {
  if (!isObject(body)) throw invalidParam('body', 'the request body must be a JSON object');
  const { modelName, modelVersion } = modelOfOpenAi(body.model);
  for (const field of UNSUPPORTED[kind]) {
    if (body[field] !== undefined && body[field] !== null) throw invalidParam(field, `${field} is not supported by this server`);
  }
  const n = integerField(body, 'n', 1, 128);
  if (n !== undefined && n !== 1) throw invalidParam('n', 'n must be 1: one choice per request');
  const bestOf = integerField(body, 'best_of', 1, 128);
  if (bestOf !== undefined && bestOf !== 1) throw invalidParam('best_of', 'best_of must be 1');
  if (isObject(body.logit_bias) && Object.keys(body.logit_bias).length > 0) throw invalidParam('logit_bias', 'logit_bias is not supported by this server');
  if (isObject(body.response_format) && body.response_format.type !== 'text') throw invalidParam('response_format', 'response_format must be {"type": "text"}');
  const maxTokens = integerField(body, kind === 'chat' && body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens', 1, 1 << 30);
  let logprobs: boolean;
  let topLogprobs: number;
  if (kind === 'chat') {
    logprobs = booleanField(body, 'logprobs') ?? false;
    topLogprobs = integerField(body, 'top_logprobs', 0, 20) ?? 0;
    if (topLogprobs > 0 && !logprobs) throw invalidParam('top_logprobs', 'top_logprobs needs logprobs: true');
  } else {
    // The completions API's logprobs is the number of alternatives (0 to 5), the chosen token's always included.
    const count = integerField(body, 'logprobs', 0, 5);
    logprobs = count !== undefined;
    topLogprobs = count ?? 0;
  }
  const streamOptions = body.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && !isObject(streamOptions)) throw invalidParam('stream_options', 'stream_options must be an object');
  const stream = booleanField(body, 'stream') ?? false;
  if (typeof body.user !== 'undefined' && typeof body.user !== 'string') throw invalidParam('user', 'user must be a string');
  const settings = settingsOfRequest({
    maxNewTokens: maxTokens ?? 0,
    sampling: {
      temperature: numberField(body, 'temperature', 0, 2), topP: positiveField(body, 'top_p', 1),
      topK: integerField(body, 'top_k', 0, 1_000_000), repetitionPenalty: positiveField(body, 'repetition_penalty', 100),
      frequencyPenalty: numberField(body, 'frequency_penalty', -2, 2), presencePenalty: numberField(body, 'presence_penalty', -2, 2),
    },
    seed: integerField(body, 'seed', 0, Number.MAX_SAFE_INTEGER),
    stop: stopOf(body), logprobs, topLogprobs, ignoreEos: booleanField(body, 'ignore_eos') ?? false,
  });
  return {
    request: {
      modelName, modelVersion,
      parameters: typeof body.user === 'string' ? { user: { stringParam: body.user } } : {},
      prompt: promptOf(kind, body), settings,
      // Chat: as many as the model's context leaves; completions: OpenAI's default of 16.
      defaultMaxNewTokens: kind === 'chat' ? 1 << 30 : 16,
      maxTokensField: kind === 'chat' && body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens',
      priority: undefined, deadlineMs: undefined,
    },
    ask: {
      kind, model: body.model as string, stream, logprobs,
      includeUsage: isObject(streamOptions) && streamOptions.include_usage === true,
      echo: kind === 'completion' && (booleanField(body, 'echo') ?? false),
    },
  };
}

/** OpenAI's finish_reason for the generation's ('eos' and a stop string are both 'stop'). */
export const openAiFinishReason = (reason: string): 'stop' | 'length' => (reason === 'length' ? 'length' : 'stop');

const bytesOfText = (text: string) => [...new TextEncoder().encode(text)];

/** Chat logprobs of some tokens: each with its alternatives. */
export function chatLogprobsOf(tokens: readonly OutputToken[]) {
  return {
    content: tokens.map((token) => ({
      token: token.text, logprob: token.logprob, bytes: bytesOfText(token.text),
      top_logprobs: token.topLogprobs.map((top) => ({ token: top.text, logprob: top.logprob, bytes: bytesOfText(top.text) })),
    })),
  };
}

/** Completions logprobs of some tokens, `offset` the text offset of the first. */
export function completionLogprobsOf(tokens: readonly OutputToken[], offset: number) {
  const textOffset: number[] = [];
  let at = offset;
  for (const token of tokens) {
    textOffset.push(at);
    at += token.text.length;
  }
  return {
    tokens: tokens.map((token) => token.text),
    token_logprobs: tokens.map((token) => token.logprob),
    top_logprobs: tokens.map((token) => Object.fromEntries(token.topLogprobs.map((top) => [top.text, top.logprob]))),
    text_offset: textOffset,
  };
}

/** OpenAI's usage object. */
export const usageOf = (promptTokens: number, completionTokens: number) => ({
  prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens,
});
