/**
 * nexus.llm.v1.Generation: Generate streams a generation's chunks as the generation path produces
 * them; Tokenize answers the prompt's token ids. Thin: the request becomes a GenerationRequest,
 * each chunk a GenerateResponse. A generation counts against its principal's rate limits as one
 * call of prompt + max_new_tokens rows (tokens), admitted before it starts, and holds its place
 * among the principal's calls in flight until it ends.
 */
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import type { InferParameter } from '../../protocol/generated/inference/grpc_service.ts';
import {
  FinishReason, GenerationService, type GenerateRequest, type GenerateResponse, type TokenizeRequest, type TokenizeResponse,
} from '../../protocol/generated/nexus/llm/v1/llm.ts';
import { invalidArgument } from '../../domain/index.ts';
import { serverStream, unary } from '../../rpc/handlers.ts';
import { principalOf } from '../../rpc/call-principal.ts';
import { PrincipalLimiter } from '../../auth/rate-limits.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { priorityLevelOf } from '../admission/index.ts';
import { settingsOfRequest, type GenerationChunk, type GenerationPath, type Prompt } from '../generation/index.ts';
import { deadlineOf } from './call-context.ts';

const FINISH_REASONS = {
  length: FinishReason.FINISH_REASON_LENGTH,
  eos: FinishReason.FINISH_REASON_EOS,
  stop: FinishReason.FINISH_REASON_STOP,
  cancelled: FinishReason.FINISH_REASON_CANCELLED,
} as const;

/** The prompt of a request: exactly one of text, token_ids, chat. */
function promptOf(request: Pick<GenerateRequest, 'text' | 'tokenIds' | 'chat'>): Prompt {
  if (request.text !== undefined) return { kind: 'text', text: request.text };
  if (request.tokenIds !== undefined) return { kind: 'tokens', ids: request.tokenIds.ids };
  if (request.chat !== undefined) {
    request.chat.messages.forEach((message, index) => {
      if (message.role === '') throw invalidArgument(`chat.messages[${index}].role is empty`);
    });
    return { kind: 'chat', messages: request.chat.messages.map(({ role, content }) => ({ role, content })) };
  }
  throw invalidArgument('prompt is missing: set text, token_ids or chat');
}

const parametersOf = (given: Record<string, string>): Record<string, InferParameter> =>
  Object.fromEntries(Object.entries(given).map(([key, value]) => [key, { stringParam: value }]));

function priorityOf(text: string): number | undefined {
  if (text === '') return undefined;
  const level = priorityLevelOf(text);
  if (level === undefined) throw invalidArgument(`priority '${text.slice(0, 32)}' is not one of high, normal, low`);
  return level;
}

function responseOf(chunk: GenerationChunk, modelVersion: string): GenerateResponse {
  const finish = chunk.finish;
  return {
    tokens: chunk.tokens.map((token) => ({
      id: token.id, text: token.text, logprob: token.logprob,
      topLogprobs: token.topLogprobs.map((top) => ({ tokenId: top.id, text: top.text, logprob: top.logprob })),
    })),
    text: chunk.text,
    latencyMs: chunk.latencyMs,
    finishReason: finish ? FINISH_REASONS[finish.reason] : FinishReason.FINISH_REASON_UNSPECIFIED,
    stop: finish?.stop ?? '',
    promptTokens: finish?.promptTokens ?? 0,
    generatedTokens: finish?.generatedTokens ?? 0,
    timeToFirstTokenMs: finish?.timeToFirstTokenMs ?? 0,
    meanTokenLatencyMs: finish?.meanTokenLatencyMs ?? 0,
    modelVersion,
  };
}

/** The handlers of nexus.llm.v1.Generation over `path`. Default `limiter`: a principal's own limits only. */
export function createGenerationService(path: GenerationPath, logger: Logger, limiter = new PrincipalLimiter()): UntypedServiceImplementation {
  return {
    generate: serverStream('Generate', logger, async (request: GenerateRequest, call: ServerWritableStream<GenerateRequest, GenerateResponse>) => {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      const principal = principalOf(call);
      let modelVersion = '';
      await path.generate({
        modelName: request.modelName, modelVersion: request.modelVersion, parameters: parametersOf(request.parameters),
        prompt: promptOf(request), settings: settingsOfRequest(request), defaultMaxNewTokens: 256, maxTokensField: 'max_new_tokens',
        priority: priorityOf(request.priority), deadlineMs: request.timeoutMs > 0 ? Date.now() + request.timeoutMs : undefined,
      }, {
        callDeadlineMs: deadlineOf(call), signal: controller.signal,
        admitTokens: (tokens) => limiter.admit(principal, tokens),
        onStart: (start) => { modelVersion = String(start.version); },
      }, (chunk) => {
        if (!call.cancelled) call.write(responseOf(chunk, modelVersion));
      });
    }),

    tokenize: unary('Tokenize', logger, async (request: TokenizeRequest, call): Promise<TokenizeResponse> => {
      const tokenized = await path.tokenize({
        modelName: request.modelName, modelVersion: request.modelVersion, parameters: {}, prompt: promptOf(request),
      }, { callDeadlineMs: deadlineOf(call) });
      return { tokenIds: [...tokenized.promptIds], tokens: tokenized.tokens, promptText: tokenized.promptText, modelVersion: String(tokenized.version) };
    }),
  };
}

export { GenerationService };
