/**
 * The one path of an inference request, whichever entry point it came by (ModelInfer,
 * ModelStreamInfer, the task API): route it, admit it (validate against the model's signature,
 * read priority and deadline), answer it from the response cache or through the batcher, and
 * shape the protocol's response. The request is counted for the drain from arrival to answer,
 * reported once with its outcome and latency, and recorded in the A/B split it went through.
 */
import type { InferParameter, ModelInferRequest, ModelInferResponse } from '../../protocol/generated/inference/grpc_service.ts';
import { codeName, ErrorCode, modelKeyOf, NexusError } from '../../domain/index.ts';
import { inSyncSpan, tracerFor } from '../../telemetry/tracing.ts';
import { schedulingOf, validateInferRequest, type RequestByteLimits, type ValidatedRequest } from '../admission/index.ts';
import { DEFAULT_ROUTER_BUDGETS } from '../config/index.ts';
import type { CancelSignal } from '../batching/index.ts';
import { cacheKeyOf, type Experiment } from '../features/index.ts';
import type { ModelCatalog, Routed, ServedVersion } from '../models/index.ts';
import { inferResponseOf } from './infer-response.ts';
import { classificationCounts } from './classification.ts';

/** What the request path reports (Prometheus in the router). */
export interface RequestReporter {
  /**
   * One request answered. `model` is 'unknown' until routing knew it (a client-chosen name must
   * not mint series); `outcome` is 'ok' or a status code name; `seconds` from arrival to answer.
   */
  requestFinished(model: string, outcome: string, seconds: number): void;
  /** One response-cache lookup for a model that caches. */
  cacheLookup(model: string, hit: boolean): void;
}

/** Where a queued request stands, for the task API. */
export interface QueuePlace {
  /** Requests ahead of it and the expected wait; undefined once it has left the queue. */
  standing(): { position: number; estimatedWaitMs: number } | undefined;
}

export interface RequestContext {
  /** The gRPC deadline, Unix milliseconds; undefined when the client set none. */
  callDeadlineMs: number | undefined;
  signal?: CancelSignal;
  /** Told once the request was routed and passed validation and scheduling: it will not be refused as malformed. */
  onAdmitted?: () => void;
  /** Told once the request holds its place in its model's queue (never, for a cache hit). */
  onEnqueued?: (place: QueuePlace) => void;
}

/** A request that passed every check and knows its model, priority and deadline. */
interface AdmittedRequest {
  request: ModelInferRequest;
  model: ServedVersion;
  validated: ValidatedRequest;
  priority: number;
  deadlineMs: number | undefined;
}

export interface RequestPath {
  /** Answers one request; rejects with a coded error. */
  handle(request: ModelInferRequest, context: RequestContext): Promise<ModelInferResponse>;
  /** Refuses new requests and sends queued ones at once; resolves when all are answered or after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void>;
  /** Requests between arriving and being answered, wherever they are (routing, queued, running). */
  readonly inFlight: number;
}

const tracer = tracerFor('router');
const SILENT: RequestReporter = { requestFinished() {}, cacheLookup() {} };

export interface RequestPathOptions {
  /** Where outcomes go. Default: nowhere. */
  reporter?: RequestReporter;
  /** How often a drain checks whether everything was answered, in milliseconds. Default 20. */
  drainPollMs?: number;
  /** Byte budgets of one request (see RouterBudgets). Default DEFAULT_ROUTER_BUDGETS'. */
  limits?: RequestByteLimits;
  /**
   * How long before a call's gRPC deadline the router answers DEADLINE_EXCEEDED itself, in
   * milliseconds, so the answer closes the stream before the client's own timer cancels it (a
   * cancellation is an RST_STREAM, and HTTP/2 servers close connections that receive too many).
   * Default 5.
   */
  deadlineLeadMs?: number;
}

/** Settles with `work`, or rejects DEADLINE_EXCEEDED at `atMs` (Unix milliseconds) if that comes first. */
function beforeDeadline<T>(work: Promise<T>, atMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NexusError(ErrorCode.DEADLINE_EXCEEDED,
      'the call\'s deadline passed before the request was answered')), Math.max(0, atMs - Date.now()));
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** Keeps a wait within the call's deadline. */
type Bounded = <T>(work: Promise<T>) => Promise<T>;

/** The request path over `catalog`. */
export function createRequestPath(catalog: ModelCatalog, options: RequestPathOptions = {}): RequestPath {
  const reporter = options.reporter ?? SILENT;
  const drainPollMs = options.drainPollMs ?? 20;
  const limits = options.limits ?? { maxRequestBytes: DEFAULT_ROUTER_BUDGETS.maxRequestBytes, maxBatchBytes: DEFAULT_ROUTER_BUDGETS.maxBatchBytes };
  const deadlineLeadMs = options.deadlineLeadMs ?? 5;
  let inFlight = 0;
  let draining = false;

  /** Checks a routed request and reads its scheduling; the model is held from here until answered. */
  function admit(request: ModelInferRequest, model: ServedVersion, context: RequestContext): AdmittedRequest {
    catalog.hold(model);
    try {
      // Validation is pure and synchronous: its span needs no context of its own.
      const validated = inSyncSpan(tracer, 'validate', { attributes: { 'nexus.model': request.modelName } },
        () => validateInferRequest(request, model.signature, model.policy.maxBatchSize, limits));
      const { priority, deadlineMs } = schedulingOf(request.parameters, {
        defaultPriority: model.defaultPriority, callDeadlineMs: context.callDeadlineMs, nowMs: Date.now(),
      });
      return { request, model, validated, priority, deadlineMs };
    } catch (error) {
      catalog.release(model);
      throw error;
    }
  }

  /**
   * Answers an admitted request from the cache or through the batcher; `bounded` keeps a wait for
   * a model load within the call's deadline.
   */
  async function answer(admitted: AdmittedRequest, context: RequestContext, bounded: Bounded): Promise<ModelInferResponse> {
    const { request, validated } = admitted;
    // Checked before the batch runs, so a bad count costs no GPU time.
    const classifications = classificationCounts(request.outputs);
    let model = admitted.model;
    const cacheKey = model.cache ? cacheKeyOf(modelKeyOf(model.version), validated) : undefined;
    let outputs = cacheKey ? model.cache!.get(cacheKey) : undefined;
    if (cacheKey) reporter.cacheLookup(model.version.modelName, outputs !== undefined);
    // What the client can learn about how its request ran (Triton reports these as statistics).
    const parameters: Record<string, InferParameter> = { nexus_cache_hit: { boolParam: outputs !== undefined } };
    if (!outputs) {
      // No await between this and submit: once queued, the batch keeps the version loaded. A
      // servable version is the one to queue on, without a turn of the loop.
      if (!model.servable) model = await bounded(catalog.live(model));
      const queuedOn = model;
      const batch = await model.batcher.submit(validated, {
        deadlineMs: admitted.deadlineMs, signal: context.signal, priority: admitted.priority,
        onEnqueued: context.onEnqueued && ((id) => context.onEnqueued!({ standing: () => queuedOn.batcher.standing(id) })),
      });
      outputs = batch.outputs;
      parameters.nexus_batch_size = { int64Param: batch.batchRows };
      parameters.nexus_gpu_us = { int64Param: Math.round(batch.gpuNs / 1000) };
      parameters.nexus_queue_us = { int64Param: Math.round(batch.queuedMs * 1000) };
      if (cacheKey) model.cache!.set(cacheKey, outputs);
    }
    return inferResponseOf(model.version, request.id, validated, outputs, parameters, classifications);
  }

  /**
   * Routes, admits and answers one request. The router answers a call's deadline itself,
   * `deadlineLeadMs` early: the queue expires the request at that moment (its one timer serves
   * every queued request), and the waits before queueing (a model's first read, its load) are
   * raced against a timer only when they happen, off the common path.
   */
  async function handle(request: ModelInferRequest, callContext: RequestContext): Promise<ModelInferResponse> {
    const context = callContext.callDeadlineMs === undefined ? callContext : { ...callContext, callDeadlineMs: callContext.callDeadlineMs - deadlineLeadMs };
    const bounded: Bounded = context.callDeadlineMs === undefined ? (work) => work : (work) => beforeDeadline(work, context.callDeadlineMs!);
    inFlight += 1;
    const started = performance.now();
    let model = 'unknown';
    let version = 0;
    let outcome = 'ok';
    let experiment: Experiment | undefined;
    try {
      if (draining) throw new NexusError(ErrorCode.UNAVAILABLE, 'the router is shutting down; send the request to another replica');
      const route = catalog.route(request.modelName, request.modelVersion, request.parameters);
      const routed: Routed = route instanceof Promise ? await bounded(route) : route;
      const admitted = admit(request, routed.model, context);
      model = admitted.model.version.modelName;
      version = admitted.model.version.version;
      experiment = routed.experiment;
      try {
        context.onAdmitted?.();
        return await answer(admitted, context, bounded);
      } finally {
        catalog.release(admitted.model);
      }
    } catch (error) {
      outcome = codeName(NexusError.from(error).code);
      throw error;
    } finally {
      inFlight -= 1;
      const latencyMs = performance.now() - started;
      reporter.requestFinished(model, outcome, latencyMs / 1000);
      if (version > 0) experiment?.recordRequest(version, latencyMs, outcome !== 'ok');
    }
  }

  async function drain(timeoutMs: number): Promise<void> {
    draining = true;
    for (const started = Date.now(); Date.now() - started < timeoutMs;) {
      // Flushed on every pass: a request still validating when the drain began queues later.
      catalog.flush();
      if (inFlight === 0 && catalog.idle) return;
      await new Promise((wake) => setTimeout(wake, drainPollMs));
    }
  }

  return { handle, drain, get inFlight() { return inFlight; } };
}
