/**
 * The loop around one model version's BatchQueue. Each turn is one step: schedule (the queue
 * decides the next batch, and expired requests leave), execute (the batch's inputs are stacked
 * and sent), update (a pure decision says which requests are answered, failed or queued again).
 * The loop wakes when a request arrives, when a batch is due, or when an executor frees a slot.
 * Expired requests are answered DEADLINE_EXCEEDED without running; cancelled ones leave the queue.
 */
import type { BatchResult, Tensor } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import { context, SpanStatusCode, trace, type Link, type Span } from '@opentelemetry/api';
import { carrierOf, linkTo, tracerFor } from '../../telemetry/tracing.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import type { ValidatedRequest } from '../admission/index.ts';
import { BatchQueue, type BatchingPolicy, type QueueByteLimits, type QueuedRequest } from './batch-queue.ts';
import { stackInputs, type RequestOutputs } from './batch-tensors.ts';
import { updateAfterBatch, type BatchOutcome } from './batch-update.ts';

export { MAX_REQUEUES } from './batch-update.ts';

/** Runs one stacked batch; supplied by the executor pool. `traceContext` is the batch span's. */
export type BatchRunner = (inputs: Tensor[], deadlineUnixMs: number, traceContext: Record<string, string>) => Promise<BatchResult>;

/** A request's answer and what its batch was like. */
export interface BatchAnswer {
  outputs: RequestOutputs;
  /** Rows in the batch it ran in. */
  batchRows: number;
  /** GPU time of that batch, in nanoseconds (0 when the adapter has no timestamps). */
  gpuNs: number;
  /** Time from queueing to the batch being sent, in milliseconds. */
  queuedMs: number;
}

/** What a batcher reports about its model's queue and batches (Prometheus in the router). */
export interface BatcherReporter {
  /** Requests waiting now; told only when it changed. */
  queueDepth(depth: number): void;
  /** One request left the queue in a batch after waiting this long, in seconds. */
  queueTime(seconds: number): void;
  /** One batch of this many rows was sent. */
  batchSent(rows: number): void;
  /** Batches sent and not yet answered, now. */
  inflightBatches(count: number): void;
}

const SILENT_REPORTER: BatcherReporter = { queueDepth() {}, queueTime() {}, batchSent() {}, inflightBatches() {} };

interface PendingRequest extends QueuedRequest {
  readonly validated: ValidatedRequest;
  /** The request's own span (its ModelInfer call), which the batch span links to. */
  readonly span: Span | undefined;
  /** Open from queueing until the batch is sent. */
  readonly queueSpan: Span;
  /** Times it went back to the queue after its executor was lost. */
  requeues: number;
  /** The caller's cancellation: checked again before a lost batch's requests go back to the queue. */
  readonly signal: CancelSignal | undefined;
  resolve(answer: BatchAnswer): void;
  reject(error: NexusError): void;
}

/** A batch between execute and update. */
interface SentBatch {
  requests: PendingRequest[];
  totalRows: number;
  sentAtMs: number;
  span: Span;
}

export interface ModelBatcherOptions {
  /** The model's name, for spans. Default 'unknown'. */
  name?: string;
  policy: BatchingPolicy;
  run: BatchRunner;
  /** Whether a batch may be sent now (an executor has a free slot). */
  hasCapacity: () => boolean;
  /** Clock in milliseconds; injectable for tests. Default Date.now. */
  now?: () => number;
  /** Where queue and batch figures go. Default: nowhere. */
  reporter?: BatcherReporter;
  /** Byte bounds of the queue and of each batch. Default unbounded. */
  limits?: QueueByteLimits;
}

/**
 * What the batcher needs of a cancellation signal. An AbortSignal is one; a unary call uses a
 * lighter one (see grpc/call-context.ts).
 */
export interface CancelSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export interface SubmitOptions {
  /** Absolute deadline on the batcher's clock; undefined for none. */
  deadlineMs?: number;
  /** Aborting it removes the request if it is still queued (CANCELLED). */
  signal?: CancelSignal;
  /** 1 (high) … 3 (low). Default 2. */
  priority?: number;
  /** Told the request's queue id, e.g. to ask its position later. */
  onEnqueued?: (requestId: number) => void;
}

let nextRequestId = 1;
const tracer = tracerFor('router');

export class ModelBatcher {
  readonly queue: BatchQueue<PendingRequest>;
  private readonly run: BatchRunner;
  private readonly name: string;
  private inflight = 0;
  private readonly hasCapacity: () => boolean;
  private readonly now: () => number;
  private readonly reporter: BatcherReporter;
  private timer: NodeJS.Timeout | undefined;
  private timerDueMs = Infinity;
  private closed = false;
  /** The queue depth last reported, so an unchanged depth is not reported again. */
  private reportedDepth = -1;
  /** While draining, every queued request is due now: nothing waits for company. */
  private draining = false;
  /** Smoothed time from sending a batch to its answer, in milliseconds (0 until one returns). */
  averageBatchMs = 0;

  constructor(options: ModelBatcherOptions) {
    this.queue = new BatchQueue(options.policy, options.limits);
    this.run = options.run;
    this.name = options.name ?? 'unknown';
    this.hasCapacity = options.hasCapacity;
    this.now = options.now ?? Date.now;
    this.reporter = options.reporter ?? SILENT_REPORTER;
  }

  /**
   * Queues a request and resolves with its outputs. Rejects RESOURCE_EXHAUSTED at once when the
   * queue is full, DEADLINE_EXCEEDED if the deadline passes while queued, CANCELLED on `signal`.
   */
  submit(validated: ValidatedRequest, options: SubmitOptions = {}): Promise<BatchAnswer> {
    const { deadlineMs, signal, priority } = options;
    return new Promise<BatchAnswer>((resolve, reject) => {
      const now = this.now();
      if (deadlineMs !== undefined && deadlineMs <= now) {
        reject(new NexusError(ErrorCode.DEADLINE_EXCEEDED, 'the deadline had passed before the request was queued'));
        return;
      }
      if (signal?.aborted) {
        reject(new NexusError(ErrorCode.CANCELLED, 'the client cancelled the request'));
        return;
      }
      const span = trace.getActiveSpan();
      const queueSpan = tracer.startSpan('queue', { attributes: { 'nexus.model': this.name, 'nexus.rows': validated.rows } });
      // Removed once the request settles: a stream's signal serves many requests and must not
      // collect a listener for each one it ever carried.
      let onAbort: (() => void) | undefined;
      const request: PendingRequest = {
        id: nextRequestId++, rows: validated.rows, shapeKey: validated.shapeKey,
        inputBytes: validated.inputBytes, outputBytes: validated.outputBytes,
        enqueuedAtMs: now, deadlineMs, priority, validated, requeues: 0, span, queueSpan, signal,
        resolve: (answer) => {
          if (onAbort) signal!.removeEventListener('abort', onAbort);
          resolve(answer);
        },
        reject: (error) => {
          if (onAbort) signal!.removeEventListener('abort', onAbort);
          queueSpan.end();
          reject(error);
        },
      };
      const refusal = this.queue.refusal(request);
      if (refusal) {
        queueSpan.end();
        reject(new NexusError(ErrorCode.RESOURCE_EXHAUSTED, refusal === 'count'
          ? `the queue for this model is full (${this.queue.policy.maxQueueSize} requests); retry later`
          : `the queue for this model holds ${this.queue.bytes} bytes of inputs; with this request's ${validated.inputBytes} it would pass its byte budget of ${this.queue.maxQueueBytes}; retry later`));
        return;
      }
      this.queue.enqueue(request);
      options.onEnqueued?.(request.id);
      if (signal) {
        onAbort = () => {
          if (!this.queue.remove(request.id)) return;
          this.reportDepth();
          request.reject(new NexusError(ErrorCode.CANCELLED, 'the client cancelled the request'));
        };
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.pump();
    });
  }

  /** Reports the queue depth when it changed since the last report. */
  private reportDepth(): void {
    const depth = this.queue.depth;
    if (depth === this.reportedDepth) return;
    this.reportedDepth = depth;
    this.reporter.queueDepth(depth);
  }

  /** Schedules: sends every batch that is due and fits the free capacity, then arms the timer for the next. */
  pump(): void {
    const now = this.now();
    for (const expired of this.queue.takeExpired(now)) {
      expired.reject(new NexusError(ErrorCode.DEADLINE_EXCEEDED, 'the deadline passed while the request was queued; it was not executed'));
    }
    try {
      while (this.queue.depth > 0 && this.hasCapacity()) {
        // Nothing of this model running: waiting would only add latency (see waitWhenIdle).
        const sendNow = this.draining || (this.inflight === 0 && !this.queue.policy.waitWhenIdle);
        const decision = this.queue.nextBatch(sendNow ? Number.MAX_SAFE_INTEGER : now);
        if (decision.kind === 'send') {
          void this.execute(decision.requests, now);
          continue;
        }
        if (decision.kind === 'wait') this.armTimer(decision.untilMs - now);
        return;
      }
      // No capacity: the pool calls pump() when a slot frees. Deadlines still need a wake-up.
      const nearestDeadlineMs = this.queue.nearestDeadlineMs();
      if (Number.isFinite(nearestDeadlineMs)) this.armTimer(nearestDeadlineMs - now);
    } finally {
      // Once per pump rather than per request: every enqueue and dispatch ends in one.
      this.reportDepth();
    }
  }

  private armTimer(delayMs: number): void {
    const dueMs = this.now() + Math.max(0, delayMs);
    if (this.timer && this.timerDueMs <= dueMs) return;
    clearTimeout(this.timer);
    this.timerDueMs = dueMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDueMs = Infinity;
      this.pump();
    }, Math.max(0, delayMs));
    this.timer.unref();
  }

  /** Executes: stacks and sends one batch, then hands its outcome to the update step. */
  private async execute(requests: PendingRequest[], sentAtMs: number): Promise<void> {
    const batch = this.open(requests, sentAtMs);
    // The batch runs until its last request's deadline; none without one (0).
    const deadline = Math.max(...requests.map((request) => request.deadlineMs ?? Infinity));
    let outcome: BatchOutcome;
    try {
      const inputs = stackInputs(requests.map((request) => request.validated), batch.totalRows);
      outcome = { kind: 'answered', result: await this.run(inputs, Number.isFinite(deadline) ? deadline : 0, carrierOf(batch.span)) };
    } catch (error) {
      outcome = { kind: 'failed', error: NexusError.from(error) };
    }
    this.update(batch, outcome);
  }

  /** Ends the requests' queue spans, opens the batch span and counts the batch as in flight. */
  private open(requests: PendingRequest[], sentAtMs: number): SentBatch {
    let totalRows = 0;
    // A batch is its own span: a child of the first request it serves, linked to every one.
    let firstSpan: Span | undefined;
    const links: Link[] = [];
    for (const request of requests) {
      totalRows += request.rows;
      request.queueSpan.end();
      this.reporter.queueTime((sentAtMs - request.enqueuedAtMs) / 1000);
      if (request.span) {
        firstSpan ??= request.span;
        links.push(linkTo(request.span));
      }
    }
    this.reporter.batchSent(totalRows);
    const span = tracer.startSpan('batch', {
      attributes: { 'nexus.model': this.name, 'nexus.batch.rows': totalRows, 'nexus.batch.requests': requests.length },
      links,
    }, firstSpan ? trace.setSpan(context.active(), firstSpan) : context.active());
    this.inflight += 1;
    this.reporter.inflightBatches(this.inflight);
    return { requests, totalRows, sentAtMs, span };
  }

  /** Updates: closes the batch, then answers, fails or requeues each request as decided. */
  private update(batch: SentBatch, outcome: BatchOutcome): void {
    this.inflight -= 1;
    this.reporter.inflightBatches(this.inflight);
    if (outcome.kind === 'answered') {
      if (outcome.result.gpuNs) batch.span.setAttribute('nexus.gpu_ns', outcome.result.gpuNs);
      const tookMs = this.now() - batch.sentAtMs;
      this.averageBatchMs = this.averageBatchMs === 0 ? tookMs : 0.8 * this.averageBatchMs + 0.2 * tookMs;
    } else {
      batch.span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error.message });
    }
    batch.span.end();
    const decision = updateAfterBatch(batch.requests, outcome, !this.closed);
    const gpuNs = outcome.kind === 'answered' ? outcome.result.gpuNs : 0;
    for (const { request, outputs } of decision.answered) {
      request.resolve({ outputs, batchRows: batch.totalRows, gpuNs, queuedMs: batch.sentAtMs - request.enqueuedAtMs });
    }
    for (const { request, error } of decision.failed) request.reject(error);
    // A request cancelled while its batch ran was already out of the queue when the abort came.
    const requeued = decision.requeued.filter((request) => {
      if (!request.signal?.aborted) return true;
      request.reject(new NexusError(ErrorCode.CANCELLED, 'the client cancelled the request'));
      return false;
    });
    if (requeued.length > 0) {
      for (const request of requeued) request.requeues += 1;
      this.queue.requeueFront(requeued);
      this.pump();
    }
  }

  /**
   * Where a queued request stands: requests ahead of it and the expected wait until it runs;
   * undefined once it has left the queue.
   */
  standing(requestId: number): { position: number; estimatedWaitMs: number } | undefined {
    const position = this.queue.positionOf(requestId);
    if (position < 0) return undefined;
    const batchesAhead = Math.floor(position / this.queue.policy.maxBatchSize) + 1;
    return { position, estimatedWaitMs: Math.round(batchesAhead * this.averageBatchMs + this.queue.policy.maxQueueDelayMs) };
  }

  /** Sends what is queued without waiting for the batch delay (shutdown drain). */
  flush(): void {
    this.draining = true;
    this.pump();
  }

  /** True when nothing is queued and no batch is in flight. */
  get idle(): boolean {
    return this.queue.depth === 0 && this.inflight === 0;
  }

  /** Batches sent and not yet answered. */
  get inflightBatches(): number {
    return this.inflight;
  }

  /** Fails everything still queued (shutdown). */
  close(reason: NexusError): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const request of this.queue.drain()) request.reject(reason);
    this.reportDepth();
  }
}
