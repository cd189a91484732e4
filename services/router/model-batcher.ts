/**
 * The loop around one model version's BatchQueue: it queues validated requests, wakes when a batch
 * is due or an executor frees a slot, stacks the batch's inputs along dimension 0, sends it, and
 * splits the outputs back to each waiting request. Expired requests are answered DEADLINE_EXCEEDED
 * without running; cancelled ones leave the queue.
 */
import type { BatchResult, Tensor } from '../protocol/generated/nexus/executor/v1/executor.ts';
import { context, SpanStatusCode, trace, type Link, type Span } from '@opentelemetry/api';
import { BYTES_PER_ELEMENT, elementCount, isDatatype } from '../onnx/index.ts';
import { metrics } from '../telemetry/metrics.ts';
import { carrierOf, linkTo, tracerFor } from '../telemetry/tracing.ts';
import { ErrorCode, NexusError } from '../domain/errors.ts';
import { BatchQueue, type BatchingPolicy, type QueuedRequest } from './batch-queue.ts';
import type { ValidatedRequest } from './request-validation.ts';

/** Runs one stacked batch; supplied by the executor pool. `traceContext` is the batch span's. */
export type BatchRunner = (inputs: Tensor[], deadlineUnixMs: number, traceContext: Record<string, string>) => Promise<BatchResult>;

/** One request's slice of the batch's outputs. */
export type RequestOutputs = Map<string, Tensor>;

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

/** How many times a request whose executor was lost goes back to the queue before failing. */
export const MAX_REQUEUES = 3;

interface PendingRequest extends QueuedRequest {
  readonly validated: ValidatedRequest;
  /** The request's own span (its ModelInfer call), which the batch span links to. */
  readonly span: Span | undefined;
  /** Open from queueing until the batch is sent. */
  readonly queueSpan: Span;
  /** Times it went back to the queue after its executor was lost. */
  requeues: number;
  resolve(answer: BatchAnswer): void;
  reject(error: NexusError): void;
}

export interface ModelBatcherOptions {
  /** The model's name, for metrics and spans. */
  name?: string;
  policy: BatchingPolicy;
  run: BatchRunner;
  /** Whether a batch may be sent now (an executor has a free slot). */
  hasCapacity: () => boolean;
  /** Clock in milliseconds; injectable for tests. Default Date.now. */
  now?: () => number;
}

/**
 * What the batcher needs of a cancellation signal. An AbortSignal is one; a unary call uses a
 * lighter one (see inference-service.ts).
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
  /** 1 (high) … 3 (low). */
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
  private timer: NodeJS.Timeout | undefined;
  private timerDueMs = Infinity;
  private closed = false;
  /** The metric labels of this model, built once: every request and batch is counted under them. */
  private readonly labels: { model: string };
  /** The queue depth last written to the gauge, so an unchanged depth is not written again. */
  private reportedDepth = -1;
  /** While draining, every queued request is due now: nothing waits for company. */
  private draining = false;
  /** Sizes (in rows) of the batches sent, for observation. */
  readonly batchRows: number[] = [];
  /** Smoothed time from sending a batch to its answer, in milliseconds (0 until one returns). */
  averageBatchMs = 0;

  constructor(options: ModelBatcherOptions) {
    this.queue = new BatchQueue(options.policy);
    this.run = options.run;
    this.name = options.name ?? 'unknown';
    this.labels = { model: this.name };
    this.hasCapacity = options.hasCapacity;
    this.now = options.now ?? Date.now;
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
        enqueuedAtMs: now, deadlineMs, priority, validated, requeues: 0, span, queueSpan,
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
      if (!this.queue.enqueue(request)) {
        queueSpan.end();
        reject(new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
          `the queue for this model is full (${this.queue.policy.maxQueueSize} requests); retry later`));
        return;
      }
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

  /** Writes the queue depth to its gauge when it changed since the last write. */
  private reportDepth(): void {
    const depth = this.queue.depth;
    if (depth === this.reportedDepth) return;
    this.reportedDepth = depth;
    metrics.queueDepth.set(this.labels, depth);
  }

  /** Sends every batch that is due and fits the free capacity, then arms the timer for the next. */
  pump(): void {
    const now = this.now();
    for (const expired of this.queue.takeExpired(now)) {
      expired.reject(new NexusError(ErrorCode.DEADLINE_EXCEEDED, 'the deadline passed while the request was queued; it was not executed'));
    }
    try {
      while (this.queue.depth > 0 && this.hasCapacity()) {
        const decision = this.queue.nextBatch(this.draining ? Number.MAX_SAFE_INTEGER : now);
        if (decision.kind === 'send') {
          this.dispatch(decision.requests, now);
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

  private dispatch(requests: PendingRequest[], sentAtMs: number): void {
    let totalRows = 0;
    // The batch runs until its last request's deadline; none without one (0).
    let deadline = -Infinity;
    // A batch is its own span: a child of the first request it serves, linked to every one.
    let firstSpan: Span | undefined;
    const links: Link[] = [];
    const validated: ValidatedRequest[] = [];
    const rows: number[] = [];
    for (const request of requests) {
      totalRows += request.rows;
      deadline = Math.max(deadline, request.deadlineMs ?? Infinity);
      request.queueSpan.end();
      metrics.queueTime.observe(this.labels, (sentAtMs - request.enqueuedAtMs) / 1000);
      if (request.span) {
        firstSpan ??= request.span;
        links.push(linkTo(request.span));
      }
      validated.push(request.validated);
      rows.push(request.rows);
    }
    this.batchRows.push(totalRows);
    metrics.batchSize.observe(this.labels, totalRows);
    const batchSpan = tracer.startSpan('batch', {
      attributes: { 'nexus.model': this.name, 'nexus.batch.rows': totalRows, 'nexus.batch.requests': requests.length },
      links,
    }, firstSpan ? trace.setSpan(context.active(), firstSpan) : context.active());
    this.inflight += 1;
    metrics.inflightBatches.set(this.labels, this.inflight);
    const settled = (gpuNs?: number) => {
      this.inflight -= 1;
      metrics.inflightBatches.set(this.labels, this.inflight);
      if (gpuNs) batchSpan.setAttribute('nexus.gpu_ns', gpuNs);
      batchSpan.end();
    };
    const inputs = stackInputs(validated, totalRows);
    this.run(inputs, Number.isFinite(deadline) ? deadline : 0, carrierOf(batchSpan)).then(
      (result) => {
        settled(result.gpuNs);
        const tookMs = this.now() - sentAtMs;
        this.averageBatchMs = this.averageBatchMs === 0 ? tookMs : 0.8 * this.averageBatchMs + 0.2 * tookMs;
        try {
          const slices = splitOutputs(result.outputs, rows, totalRows);
          requests.forEach((request, index) => request.resolve({
            outputs: slices[index], batchRows: totalRows, gpuNs: result.gpuNs, queuedMs: sentAtMs - request.enqueuedAtMs,
          }));
        } catch (error) {
          const coded = NexusError.from(error);
          for (const request of requests) request.reject(coded);
        }
      },
      (error: unknown) => {
        settled();
        const coded = NexusError.from(error);
        batchSpan.setStatus({ code: SpanStatusCode.ERROR, message: coded.message });
        // The executor was lost before answering: the batch did not run, so it may run elsewhere.
        const retryable = coded.code === ErrorCode.UNAVAILABLE && !this.closed;
        const again = retryable ? requests.filter((request) => request.requeues < MAX_REQUEUES) : [];
        for (const request of requests) {
          if (again.includes(request)) request.requeues += 1;
          else request.reject(coded);
        }
        if (again.length > 0) {
          this.queue.requeueFront(again);
          this.pump();
        }
      },
    );
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

  /** Fails everything still queued (shutdown). */
  close(reason: NexusError): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const request of this.queue.drain()) request.reject(reason);
    this.reportDepth();
  }
}

/** Concatenates each input of the requests along dimension 0. */
export function stackInputs(requests: ValidatedRequest[], totalRows: number): Tensor[] {
  return requests[0].inputs.map((first, index) => {
    if (requests.length === 1) return { name: first.name, datatype: first.datatype, shape: first.shape, data: first.data };
    const parts = requests.map((request) => request.inputs[index].data);
    const data = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
    let offset = 0;
    for (const part of parts) {
      data.set(part, offset);
      offset += part.byteLength;
    }
    return { name: first.name, datatype: first.datatype, shape: [totalRows, ...first.shape.slice(1)], data };
  });
}

/** Cuts each output along dimension 0 into one slice per request, `rows[i]` rows each. */
export function splitOutputs(outputs: Tensor[], rows: number[], totalRows: number): RequestOutputs[] {
  const slices: RequestOutputs[] = rows.map(() => new Map());
  for (const output of outputs) {
    if (rows.length === 1) {
      slices[0].set(output.name, output);
      continue;
    }
    if (output.shape[0] !== totalRows || !isDatatype(output.datatype)) {
      throw new NexusError(ErrorCode.INTERNAL, `output '${output.name}' has shape [${output.shape}], which cannot be split into ${totalRows} rows`);
    }
    const rowShape = output.shape.slice(1);
    const rowBytes = elementCount(rowShape) * BYTES_PER_ELEMENT[output.datatype];
    let offset = 0;
    rows.forEach((count, index) => {
      slices[index].set(output.name, {
        name: output.name, datatype: output.datatype, shape: [count, ...rowShape],
        data: output.data.subarray(offset, offset + count * rowBytes),
      });
      offset += count * rowBytes;
    });
  }
  return slices;
}
