/**
 * The one path of a generation request, whichever API it came by (nexus.llm.v1 Generate,
 * Triton's vLLM convention on ModelInfer and ModelStreamInfer): route the model as ModelInfer
 * does, tokenize the prompt with the version's tokenizer, check the lengths against what the
 * executors take, admit the tokens against the caller's rate limits, wait for KV capacity on an
 * executor (sequence-scheduler.ts), start the sequence there and turn its events into text
 * chunks (sequence-output.ts). A stop string, a cancelled call or a passed deadline cancels the
 * sequence on the executor at once, which frees its KV blocks. One span per generation.
 */
import type { Span } from '@opentelemetry/api';
import type { InferParameter } from '../../protocol/generated/inference/grpc_service.ts';
import type { SequenceEvent } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import { codeName, ErrorCode, invalidArgument, NexusError } from '../../domain/index.ts';
import { carrierOf, inSpan, tracerFor } from '../../telemetry/tracing.ts';
import type { CancelSignal } from '../batching/index.ts';
import type { ModelCatalog, ServedVersion } from '../models/index.ts';
import type { GenerationSettings } from './sampling.ts';
import { SequenceOutput, type OutputToken } from './sequence-output.ts';
import type { Reservation, SequenceScheduler } from './sequence-scheduler.ts';
import type { ChatTurn, TextTokenizer } from './text-tokenizer.ts';
import { isTextGenerationVersion } from './text-generation-model.ts';

export type Prompt =
  | { kind: 'text'; text: string }
  | { kind: 'tokens'; ids: number[] }
  | { kind: 'chat'; messages: ChatTurn[] };

export interface GenerationRequest {
  modelName: string;
  modelVersion: string;
  /** For a split's sticky arm, as ModelInfer's parameters. */
  parameters: Record<string, InferParameter>;
  prompt: Prompt;
  settings: GenerationSettings;
  /** Used when settings.maxNewTokens is undefined; cut to what the model's context leaves. */
  defaultMaxNewTokens: number;
  /** How the request names max_new_tokens, for errors. */
  maxTokensField: string;
  /** 1 (high) … 3 (low); undefined: the model's default. */
  priority: number | undefined;
  /** Absolute, Unix milliseconds (e.g. from parameters.timeout); undefined: none. */
  deadlineMs: number | undefined;
}

export type FinishReason = 'length' | 'eos' | 'stop' | 'cancelled';

export interface GenerationFinish {
  reason: FinishReason;
  /** The stop string reached, with reason 'stop'. */
  stop?: string;
  promptTokens: number;
  generatedTokens: number;
  timeToFirstTokenMs: number;
  meanTokenLatencyMs: number;
}

/** What one step of a sequence gives the client; the last one has `finish`. */
export interface GenerationChunk {
  tokens: OutputToken[];
  text: string;
  /** Since the previous chunk, or since arrival for the first. */
  latencyMs: number;
  finish?: GenerationFinish;
}

/** What the path tells the API before the first chunk: the version that runs and its prompt. */
export interface GenerationStart {
  modelName: string;
  version: number;
  promptIds: readonly number[];
  /** The prompt as text: the text given, the template's rendering, or the token ids decoded. */
  promptText: string;
}

export interface GenerationContext {
  /** The gRPC deadline, Unix milliseconds. */
  callDeadlineMs: number | undefined;
  signal?: CancelSignal;
  /** Counts the sequence's tokens (prompt plus max_new_tokens) against the caller's rate limits. */
  admitTokens?: (tokens: number) => Promise<{ release(): void }>;
  onStart?: (start: GenerationStart) => void;
}

/** What the path reports (Prometheus in the router). */
export interface GenerationReporter {
  /** One generation ended; `outcome` is its finish reason or a status code name. */
  generationFinished(model: string, outcome: string, promptTokens: number, generatedTokens: number): void;
  timeToFirstToken(model: string, seconds: number): void;
  /** The time between two tokens, once per token after the first. */
  interTokenLatency(model: string, seconds: number): void;
}

/** Where tokenizers come from (TokenizerCache is one). */
export interface TokenizerSource {
  tokenizerOf(version: ServedVersion['version']): Promise<TextTokenizer>;
}

export interface GenerationPathParts {
  catalog: ModelCatalog;
  tokenizers: TokenizerSource;
  scheduler: SequenceScheduler;
  reporter?: GenerationReporter;
  /** How long before a call's deadline the router answers DEADLINE_EXCEEDED itself, ms. Default 5. */
  deadlineLeadMs?: number;
  /**
   * Longest wait for the next event of a running sequence, ms: past it the executor is taken for
   * hung, the sequence is cancelled there and fails UNAVAILABLE (as a batch past its timeout).
   * Default 30 000.
   */
  stallTimeoutMs?: number;
}

export interface GenerationPath {
  /** Runs one generation, calling `onChunk` for each step; resolves after the last one (with `finish`). */
  generate(request: GenerationRequest, context: GenerationContext, onChunk: (chunk: GenerationChunk) => void): Promise<void>;
  /** The prompt's token ids under the version's tokenizer, without generating. */
  tokenize(request: Pick<GenerationRequest, 'modelName' | 'modelVersion' | 'parameters' | 'prompt'>, context: GenerationContext): Promise<GenerationStart & { tokens: string[] }>;
  /** Refuses new generations; resolves once the running ones ended or after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void>;
}

const tracer = tracerFor('router');
const SILENT: GenerationReporter = { generationFinished() {}, timeToFirstToken() {}, interTokenLatency() {} };

const earliest = (a: number | undefined, b: number | undefined) => (a === undefined ? b : b === undefined ? a : Math.min(a, b));

/** Settles with `work`, or rejects DEADLINE_EXCEEDED at `atMs` if that comes first. */
function withinDeadline<T>(work: T | Promise<T>, atMs: number | undefined): Promise<T> {
  if (atMs === undefined || !(work instanceof Promise)) return Promise.resolve(work);
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NexusError(ErrorCode.DEADLINE_EXCEEDED, 'the deadline passed before generation started')), Math.max(0, atMs - Date.now()));
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** The prompt's ids and text. Throws INVALID_ARGUMENT for an empty prompt or an id outside the vocabulary. */
function promptOf(prompt: Prompt, tokenizer: TextTokenizer): { ids: number[]; text: string } {
  let ids: number[];
  let text: string;
  if (prompt.kind === 'tokens') {
    ids = prompt.ids;
    const outside = ids.findIndex((id) => id >= tokenizer.vocabSize);
    if (outside >= 0) throw invalidArgument(`token_ids.ids[${outside}] is ${ids[outside]}, outside the vocabulary of ${tokenizer.vocabSize} tokens`);
    text = tokenizer.decode(ids, false);
  } else if (prompt.kind === 'chat') {
    if (prompt.messages.length === 0) throw invalidArgument('chat.messages is empty');
    text = tokenizer.renderChat(prompt.messages);
    ids = tokenizer.encode(text, false);
  } else {
    text = prompt.text;
    ids = tokenizer.encode(text);
  }
  if (ids.length === 0) throw invalidArgument('the prompt is empty: it has no tokens');
  return { ids, text };
}

/** max_new_tokens checked against the model's context: the default is cut to fit, an explicit value must fit. Pure. */
export function maxNewTokensFor(request: Pick<GenerationRequest, 'settings' | 'defaultMaxNewTokens' | 'maxTokensField'>, promptTokens: number, maxSequenceTokens: number): number {
  const room = maxSequenceTokens - promptTokens;
  if (room < 1) throw invalidArgument(`the prompt has ${promptTokens} tokens; the model takes at most ${maxSequenceTokens} in all, at least one of them generated`);
  const asked = request.settings.maxNewTokens;
  if (asked === undefined) return Math.min(request.defaultMaxNewTokens, room);
  if (asked > room) {
    throw invalidArgument(`${request.maxTokensField} is ${asked}, but the prompt's ${promptTokens} tokens leave ${room} of the model's ${maxSequenceTokens}; ask for at most ${room}`);
  }
  return asked;
}

const EXECUTOR_FINISH: Record<string, FinishReason> = { length: 'length', eos: 'eos', cancelled: 'cancelled', stop: 'stop' };

export function createGenerationPath(parts: GenerationPathParts): GenerationPath {
  const { catalog, tokenizers, scheduler } = parts;
  const reporter = parts.reporter ?? SILENT;
  const deadlineLeadMs = parts.deadlineLeadMs ?? 5;
  const stallTimeoutMs = parts.stallTimeoutMs ?? 30_000;
  let inFlight = 0;
  let draining = false;

  /** Routes to a text-generation version, holds it, and reads its tokenizer and prompt. */
  async function prepare(request: Pick<GenerationRequest, 'modelName' | 'modelVersion' | 'parameters' | 'prompt'>, deadlineMs: number | undefined) {
    const routed = await withinDeadline(catalog.route(request.modelName, request.modelVersion, request.parameters), deadlineMs);
    const model = routed.model;
    if (!isTextGenerationVersion(model.version)) {
      throw invalidArgument(`model '${model.version.modelName}' version ${model.version.version} is not a text-generation model (its format is ${model.version.format}); use ModelInfer`);
    }
    catalog.hold(model);
    try {
      const tokenizer = await withinDeadline(tokenizers.tokenizerOf(model.version), deadlineMs);
      return { model, tokenizer, prompt: promptOf(request.prompt, tokenizer) };
    } catch (error) {
      catalog.release(model);
      throw error;
    }
  }

  async function generate(request: GenerationRequest, context: GenerationContext, onChunk: (chunk: GenerationChunk) => void): Promise<void> {
    if (draining) throw new NexusError(ErrorCode.UNAVAILABLE, 'the router is shutting down; send the request to another replica');
    const arrivedMs = performance.now();
    const deadlineMs = earliest(context.callDeadlineMs === undefined ? undefined : context.callDeadlineMs - deadlineLeadMs, request.deadlineMs);
    inFlight += 1;
    let model = 'unknown';
    let outcome = 'ok';
    let promptTokens = 0;
    // Counted as they arrive, so a generation that fails midway still counts what it generated.
    const progress = { generated: 0 };
    try {
      await inSpan(tracer, 'generate', { attributes: { 'nexus.model': request.modelName } }, async (span) => {
        const prepared = await prepare(request, deadlineMs);
        const routedModel = prepared.model;
        model = routedModel.version.modelName;
        promptTokens = prepared.prompt.ids.length;
        span.setAttributes({ 'nexus.version': routedModel.version.version, 'nexus.prompt_tokens': promptTokens });
        try {
          const served = routedModel.servable ? routedModel : await withinDeadline(catalog.live(routedModel), deadlineMs);
          const limits = await scheduler.whenHeld(served.key, deadlineMs, context.signal);
          const maxNewTokens = maxNewTokensFor(request, promptTokens, limits.maxSequenceTokens);
          const tokens = promptTokens + maxNewTokens;
          if (tokens > limits.maxCapacityTokens) {
            throw invalidArgument(`${request.maxTokensField}: the sequence needs ${tokens} tokens of KV cache (prompt and new tokens), more than any executor's ${limits.maxCapacityTokens}; ask for fewer`);
          }
          context.onStart?.({ modelName: model, version: served.version.version, promptIds: prepared.prompt.ids, promptText: prepared.prompt.text });
          const admission = await context.admitTokens?.(tokens);
          try {
            const priority = request.priority ?? served.defaultPriority;
            const reservation = await scheduler.acquire(served.key, {
              tokens, priority, deadlineMs, signal: context.signal, maxQueued: served.policy.maxQueueSize,
            });
            const finish = await runSequence({
              reservation, version: served.version.version, priority, request, tokenizer: prepared.tokenizer, promptIds: prepared.prompt.ids,
              maxNewTokens, deadlineMs, signal: context.signal, span, arrivedMs, model, onChunk, progress,
            });
            outcome = finish.reason;
            span.setAttributes({ 'nexus.generated_tokens': finish.generatedTokens, 'nexus.finish_reason': finish.reason, 'nexus.ttft_ms': finish.timeToFirstTokenMs });
          } finally {
            admission?.release();
          }
        } finally {
          catalog.release(routedModel);
        }
      });
    } catch (error) {
      outcome = codeName(NexusError.from(error).code);
      throw error;
    } finally {
      inFlight -= 1;
      if (model !== 'unknown') reporter.generationFinished(model, outcome, promptTokens, progress.generated);
    }
  }

  interface Running {
    reservation: Reservation;
    version: number;
    priority: number;
    request: GenerationRequest;
    tokenizer: TextTokenizer;
    promptIds: number[];
    maxNewTokens: number;
    deadlineMs: number | undefined;
    signal: CancelSignal | undefined;
    span: Span;
    arrivedMs: number;
    model: string;
    onChunk: (chunk: GenerationChunk) => void;
    progress: { generated: number };
  }

  /** Runs the sequence on its reserved executor; resolves with how it finished once its last chunk is out. */
  function runSequence(running: Running): Promise<GenerationFinish> {
    const { reservation, request, promptIds, arrivedMs, model, onChunk } = running;
    const output = new SequenceOutput(running.tokenizer, promptIds, request.settings.stop);
    return new Promise<GenerationFinish>((resolve, reject) => {
      let done = false;
      let lastChunkMs = arrivedMs;
      let firstTokenMs: number | undefined;
      let lastTokenMs = arrivedMs;
      let timer: NodeJS.Timeout | undefined;
      let stallTimer: NodeJS.Timeout | undefined;
      let handle: { cancel(): void } | undefined;
      const onAbort = () => end(new NexusError(ErrorCode.CANCELLED, 'the client cancelled the call'));
      const cleanup = () => {
        done = true;
        clearTimeout(timer);
        clearTimeout(stallTimer);
        running.signal?.removeEventListener('abort', onAbort);
      };
      /** Restarts the wait for the executor's next event. */
      const watchForStall = () => {
        clearTimeout(stallTimer);
        stallTimer = setTimeout(() => end(new NexusError(ErrorCode.UNAVAILABLE,
          `executor ${reservation.executor.address} sent nothing for the sequence in ${stallTimeoutMs} ms; it was cancelled there`)), stallTimeoutMs);
        stallTimer.unref();
      };
      /** Ends the sequence early: the executor stops it and frees its KV blocks. */
      const end = (error: NexusError) => {
        if (done) return;
        cleanup();
        handle?.cancel();
        reject(error);
      };
      const timing = (count: number) => {
        const now = performance.now();
        if (count > 0) {
          // Tokens that came together share the time since the previous ones; those with the first came with it.
          let perTokenMs = 0;
          if (firstTokenMs === undefined) {
            firstTokenMs = now;
            reporter.timeToFirstToken(model, (now - arrivedMs) / 1000);
            count -= 1;
          } else {
            perTokenMs = (now - lastTokenMs) / count;
          }
          for (let index = 0; index < count; index++) reporter.interTokenLatency(model, perTokenMs / 1000);
          lastTokenMs = now;
        }
        const latencyMs = now - lastChunkMs;
        lastChunkMs = now;
        return latencyMs;
      };
      const finished = (reason: FinishReason, stop: string | undefined): GenerationFinish => ({
        reason, stop, promptTokens: promptIds.length, generatedTokens: output.generated,
        timeToFirstTokenMs: firstTokenMs === undefined ? 0 : firstTokenMs - arrivedMs,
        meanTokenLatencyMs: output.generated > 1 && firstTokenMs !== undefined ? (lastTokenMs - firstTokenMs) / (output.generated - 1) : 0,
      });
      const onEvent = (event: SequenceEvent) => {
        if (event.finishReason !== '') reservation.release();
        if (done) return;
        watchForStall();
        const step = output.accept(event.tokens);
        running.progress.generated = output.generated;
        const latencyMs = timing(step.tokens.length);
        if (step.stop !== undefined) {
          cleanup();
          handle?.cancel();
          const finish = finished('stop', step.stop);
          onChunk({ tokens: step.tokens, text: step.text, latencyMs, finish });
          resolve(finish);
          return;
        }
        if (event.finishReason === '') {
          if (step.tokens.length > 0 || step.text !== '') onChunk({ tokens: step.tokens, text: step.text, latencyMs });
          return;
        }
        cleanup();
        if (event.finishReason === 'error' || !EXECUTOR_FINISH[event.finishReason]) {
          const code = (event.errorCode || ErrorCode.INTERNAL) as ErrorCode;
          reject(new NexusError(code, event.errorMessage || `the executor ended the sequence: ${event.finishReason}`));
          return;
        }
        const tail = output.finish();
        const finish = finished(tail.stop !== undefined ? 'stop' : EXECUTOR_FINISH[event.finishReason], tail.stop);
        onChunk({ tokens: step.tokens, text: step.text + tail.text, latencyMs, finish });
        resolve(finish);
      };
      try {
        handle = reservation.executor.startSequence({
          modelName: model,
          version: running.version,
          promptTokenIds: promptIds,
          maxNewTokens: running.maxNewTokens,
          sampling: request.settings.sampling,
          stopTokenIds: request.settings.ignoreEos ? [] : [...running.tokenizer.eosTokenIds],
          logprobs: request.settings.logprobs,
          topLogprobs: request.settings.topLogprobs,
          deadlineUnixMs: running.deadlineMs ?? 0,
          priority: running.priority,
          traceContext: carrierOf(running.span),
        }, onEvent);
      } catch (error) {
        cleanup();
        reservation.release();
        reject(NexusError.from(error));
        return;
      }
      if (running.signal?.aborted) {
        onAbort();
        return;
      }
      running.signal?.addEventListener('abort', onAbort);
      watchForStall();
      if (running.deadlineMs !== undefined) {
        timer = setTimeout(() => end(new NexusError(ErrorCode.DEADLINE_EXCEEDED, 'the deadline passed while the sequence was generating')),
          Math.max(0, running.deadlineMs - Date.now()));
      }
    });
  }

  async function tokenize(request: Pick<GenerationRequest, 'modelName' | 'modelVersion' | 'parameters' | 'prompt'>, context: GenerationContext) {
    const deadlineMs = context.callDeadlineMs === undefined ? undefined : context.callDeadlineMs - deadlineLeadMs;
    const { model, tokenizer, prompt } = await prepare(request, deadlineMs);
    catalog.release(model);
    return {
      modelName: model.version.modelName, version: model.version.version, promptIds: prompt.ids, promptText: prompt.text,
      tokens: prompt.ids.map((id) => tokenizer.tokenString(id)),
    };
  }

  async function drain(timeoutMs: number): Promise<void> {
    draining = true;
    for (const started = Date.now(); inFlight > 0 && Date.now() - started < timeoutMs;) await new Promise((wake) => setTimeout(wake, 20));
  }

  return { generate, tokenize, drain };
}
