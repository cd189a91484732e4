/**
 * The OpenAI-compatible API, so OpenAI's client libraries (and tools built on them) talk to the
 * router unchanged:
 *
 *   GET  /v1/models              the text-generation models the key may use
 *   POST /v1/completions         a prompt (text or token ids)
 *   POST /v1/chat/completions    messages, rendered with the model's chat template
 *
 * Both generations run on the one generation path, as nexus.llm.v1.Generation/Generate does,
 * under its access-table entry, with the prompt plus max_tokens counted as rows against the
 * key's rate limits. `stream: true` answers server-sent events, one chunk per piece of text,
 * ending `data: [DONE]`; `stream_options.include_usage` adds a last chunk with the token counts.
 * Errors are OpenAI's error object.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { authorizeModel } from '../../auth/access.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import type { GenerationChunk } from '../generation/index.ts';
import { GENERATION_ACCESS } from '../grpc/index.ts';
import { cancellationOf, type MirroredMethod } from './http-edge.ts';
import type { RouteContext } from './route-context.ts';
import { openAiErrorBody } from './http-status.ts';
import {
  chatLogprobsOf, completionLogprobsOf, generationOfOpenAi, modelOfOpenAi, openAiFinishReason, usageOf, type OpenAiAsk, type OpenAiKind,
} from './openai-request.ts';
import { EventStream } from './sse.ts';

const GENERATE: MirroredMethod = { label: 'Generate', access: GENERATION_ACCESS.generate };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** What every answer of one request shares. */
interface Envelope {
  id: string;
  created: number;
  model: string;
}

/** One streamed chunk's choice, for chat or completions. */
function streamedChoice(ask: OpenAiAsk, text: string, chunk: GenerationChunk, textOffset: number, first: boolean) {
  const logprobs = ask.logprobs && chunk.tokens.length > 0
    ? (ask.kind === 'chat' ? chatLogprobsOf(chunk.tokens) : completionLogprobsOf(chunk.tokens, textOffset)) : null;
  const finish = chunk.finish ? openAiFinishReason(chunk.finish.reason) : null;
  if (ask.kind === 'completion') return { index: 0, text, logprobs, finish_reason: finish };
  const delta = first ? { role: 'assistant', content: text } : text === '' ? {} : { content: text };
  return { index: 0, delta, logprobs, finish_reason: finish };
}

export function registerOpenAiRoutes({ app, edge, parts }: RouteContext): void {
  const { limiter } = parts;

  app.get('/v1/models', async (request) => {
    const principal = await edge.admit(request, GENERATE);
    const registry = parts.dashboard?.registry;
    const latest = registry ? await edge.within(request, () => registry.listModels(edge.authorizationOf(request))) : [];
    const generates = latest.filter((version) => {
      const signature = version.signature;
      if (!signature?.inputs.some((input) => input.name === 'text_input') || !signature.outputs.some((output) => output.name === 'text_output')) return false;
      try {
        authorizeModel(principal, version.modelName);
        return true;
      } catch {
        return false;
      }
    });
    return {
      object: 'list',
      data: generates.map((version) => ({
        id: version.modelName, object: 'model', created: Math.floor(Number(version.createdAtUnixMs) / 1000), owned_by: version.creator || 'nexusml',
      })),
    };
  });

  const complete = (kind: OpenAiKind) => async (request: FastifyRequest, reply: FastifyReply) => {
    const principal = await edge.admit(request, GENERATE);
    const path = parts.generation?.path;
    if (!path) throw new NexusError(ErrorCode.UNIMPLEMENTED, 'this router serves no text generation');
    authorizeModel(principal, modelOfOpenAi(isObject(request.body) ? request.body.model : undefined).modelName);
    const { request: generation, ask } = generationOfOpenAi(kind, request.body);
    const envelope: Envelope = { id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID()}`, created: Math.floor(Date.now() / 1000), model: ask.model };
    const object = kind === 'chat' ? (ask.stream ? 'chat.completion.chunk' : 'chat.completion') : 'text_completion';
    let version = '';
    let promptText = '';
    let text = '';
    const tokens: GenerationChunk['tokens'] = [];
    let usage = usageOf(0, 0);
    let chunks = 0;
    let finishReason: 'stop' | 'length' = 'stop';
    const events = new EventStream(reply);
    const fingerprint = () => `nexusml-${generation.modelName}-v${version}`;
    const onChunk = (chunk: GenerationChunk) => {
      if (chunk.finish) {
        usage = usageOf(chunk.finish.promptTokens, chunk.finish.generatedTokens);
        finishReason = openAiFinishReason(chunk.finish.reason);
      }
      const first = chunks === 0;
      chunks += 1;
      const piece = (first && ask.echo ? promptText : '') + chunk.text;
      const offset = text.length;
      text += piece;
      tokens.push(...chunk.tokens);
      if (!ask.stream) return;
      events.send({
        ...envelope, object, system_fingerprint: fingerprint(), choices: [streamedChoice(ask, piece, chunk, offset, first)],
        ...(ask.includeUsage ? { usage: null } : {}),
      });
    };
    try {
      await edge.within(request, () => path.generate(generation, {
        callDeadlineMs: undefined, signal: cancellationOf(reply),
        admitTokens: (count) => limiter.admit(principal, count),
        onStart: (start) => {
          version = String(start.version);
          promptText = start.promptText;
        },
      }, onChunk));
    } catch (error) {
      if (!events.started) throw error;
      const coded = NexusError.from(error);
      edge.failed(request, coded, error);
      events.send(openAiErrorBody(coded));
      events.send('[DONE]');
      events.end();
      return reply;
    }
    if (ask.stream) {
      if (ask.includeUsage) events.send({ ...envelope, object, system_fingerprint: fingerprint(), choices: [], usage });
      events.send('[DONE]');
      events.end();
      return reply;
    }
    const logprobs = ask.logprobs ? (kind === 'chat' ? chatLogprobsOf(tokens) : completionLogprobsOf(tokens, 0)) : null;
    const choice = kind === 'chat'
      ? { index: 0, message: { role: 'assistant', content: text }, logprobs, finish_reason: finishReason }
      : { index: 0, text, logprobs, finish_reason: finishReason };
    return reply.send({ ...envelope, object, system_fingerprint: fingerprint(), choices: [choice], usage });
  };
  app.post('/v1/completions', complete('completion'));
  app.post('/v1/chat/completions', complete('chat'));
}
