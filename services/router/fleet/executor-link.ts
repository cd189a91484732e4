/**
 * The router's end of one executor's long-lived Connect stream. Loads and batches go down with an
 * id; answers come back by id. When the stream breaks, everything pending on it fails with
 * UNAVAILABLE at once (so the caller can retry elsewhere) and the link reconnects with backoff.
 * Every batch waits at most `batchTimeoutMs`: a connected but hung executor frees the slot and
 * fails the batch as a broken stream would, so it runs elsewhere. A result too large for one
 * message comes in chunks, put together here (bounded by `maxResultBytes`) before the batch is
 * answered; the batch timeout keeps running while they arrive. Text generation runs sequences:
 * StartSequence goes down, SequenceEvents come up by sequence id until the final one; a lost
 * stream ends every sequence on it with an UNAVAILABLE event.
 */
import type {
  BatchResult, ExecuteBatch, ExecutorHello, ExecutorMessage, LoadedModel, ModelLoadResult, RouterMessage, SequenceEvent, StartSequence,
} from '../../protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { trace } from '@opentelemetry/api';
import { ErrorCode, modelKey, modelKeyOf, NexusError, type ModelKey } from '../../domain/index.ts';
import { carrierOf } from '../../telemetry/tracing.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { ExecutorDialer, ExecutorStream } from './executor-stream.ts';
import { DEFAULT_MAX_RESULT_BYTES, ResultAssembly } from './result-assembly.ts';

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;
/** Consecutive failed batches that open the circuit: the executor gets no batches for a while. */
export const CIRCUIT_FAILURE_THRESHOLD = 5;
/** How long an open circuit stays open, in milliseconds. */
export const CIRCUIT_OPEN_MS = 5_000;
/** How long a batch may wait for its answer by default, in milliseconds. */
export const DEFAULT_BATCH_TIMEOUT_MS = 30_000;

export interface ExecutorLinkOptions {
  address: string;
  dialer: ExecutorDialer;
  logger: Logger;
  /**
   * Longest wait for one batch's answer, in milliseconds; past it the batch fails UNAVAILABLE
   * (it may run elsewhere) and its slot frees. Default 30 000.
   */
  batchTimeoutMs?: number;
  /**
   * Most output bytes of one chunked batch result, in bytes; a result declaring more fails its
   * batch RESOURCE_EXHAUSTED. Default DEFAULT_MAX_RESULT_BYTES (1 GiB).
   */
  maxResultBytes?: number;
}

interface Pending<T> {
  resolve(value: T): void;
  reject(error: NexusError): void;
  timer?: NodeJS.Timeout;
  /** The version a batch runs on. */
  key?: ModelKey;
  /** The chunks of a batch's result received so far. */
  assembly?: ResultAssembly;
}

/**
 * Whether an executor's refusal of a batch says it does not hold the batch's model (it restarted
 * its runtime, or evicted the model): the batch did not run, and the model must be loaded again.
 * Pure.
 */
export function isNotLoadedRefusal(code: number, message: string): boolean {
  return (code === ErrorCode.NOT_FOUND || code === ErrorCode.FAILED_PRECONDITION) && /not loaded/i.test(message);
}

/** A sequence started on an executor; `cancel` asks the executor to end it and free its KV blocks. */
export interface SequenceHandle {
  readonly sequenceId: number;
  cancel(): void;
}

/** The final event of a sequence whose executor was lost: it did not finish, and may not have started. */
const lostSequenceEvent = (sequenceId: number, message: string): SequenceEvent => ({
  sequenceId, tokens: [], finishReason: 'error', errorCode: ErrorCode.UNAVAILABLE, errorMessage: message,
  promptTokens: 0, generatedTokens: 0, firstTokenNs: 0, preemptions: 0,
});

export class ExecutorLink {
  readonly address: string;
  hello: ExecutorHello | undefined;
  /** Batches sent and not yet answered. */
  inflight = 0;
  /** The model versions this executor has loaded. */
  readonly loaded = new Set<ModelKey>();
  /** What the executor said of each version it loaded: its task and, for text generation, its KV capacity. */
  private readonly loadedModels = new Map<ModelKey, LoadedModel>();
  /** Called whenever capacity frees up or the link becomes ready. */
  onCapacity: () => void = () => {};
  onModelUnloaded: (key: ModelKey) => void = () => {};

  private readonly dialer: ExecutorDialer;
  private readonly logger: Logger;
  private readonly batchTimeoutMs: number;
  private readonly maxResultBytes: number;
  private stream: ExecutorStream | undefined;
  private nextId = 1;
  private readonly pendingLoads = new Map<number, Pending<ModelLoadResult>>();
  private readonly pendingBatches = new Map<number, Pending<BatchResult>>();
  /** Sequences running, by id: each one's event listener. */
  private readonly sequences = new Map<number, (event: SequenceEvent) => void>();
  private readyWaiters: Array<() => void> = [];
  private reconnectDelayMs = RECONNECT_MIN_MS;
  private closed = false;
  private consecutiveFailures = 0;
  private circuitOpenUntilMs = 0;

  constructor(options: ExecutorLinkOptions) {
    this.address = options.address;
    this.dialer = options.dialer;
    this.logger = options.logger.child({ executor: options.address });
    this.batchTimeoutMs = options.batchTimeoutMs ?? DEFAULT_BATCH_TIMEOUT_MS;
    this.maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
  }

  /** Opens the stream; the link keeps it open (reconnecting) until `close`. */
  start(): void {
    this.connect();
  }

  get ready(): boolean {
    return this.hello !== undefined && this.stream !== undefined;
  }

  /** True while the executor is benched for failing batch after batch. */
  get circuitOpen(): boolean {
    return Date.now() < this.circuitOpenUntilMs;
  }

  /** Free batch slots, as the executor advertised them; none while the circuit is open. */
  get freeSlots(): number {
    if (!this.ready || this.circuitOpen) return 0;
    return Math.max(0, this.hello!.maxInflightBatches - this.inflight);
  }

  /** Counts a batch's outcome; enough failures in a row open the circuit. */
  private recordOutcome(succeeded: boolean): void {
    if (succeeded) {
      this.consecutiveFailures = 0;
      return;
    }
    this.consecutiveFailures += 1;
    if (this.consecutiveFailures >= CIRCUIT_FAILURE_THRESHOLD) {
      this.consecutiveFailures = 0;
      this.circuitOpenUntilMs = Date.now() + CIRCUIT_OPEN_MS;
      this.logger.warn({ forMs: CIRCUIT_OPEN_MS }, 'executor failed repeatedly; circuit open');
      setTimeout(() => this.onCapacity(), CIRCUIT_OPEN_MS).unref();
    }
  }

  /** Resolves once the executor has said hello (or at once if it has). */
  whenReady(): Promise<void> {
    return this.ready ? Promise.resolve() : new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  private connect(): void {
    if (this.closed) return;
    const stream = this.dialer.connect();
    this.stream = stream;
    stream.on('data', (message: ExecutorMessage) => this.receive(message));
    stream.on('error', (error) => this.logger.debug({ err: error }, 'executor stream error'));
    stream.on('close', () => this.disconnected(stream));
    stream.on('end', () => this.disconnected(stream));
  }

  private receive(message: ExecutorMessage): void {
    if (message.hello) {
      this.hello = message.hello;
      this.loaded.clear();
      this.loadedModels.clear();
      for (const model of message.hello.loadedModels) this.remember(model);
      this.reconnectDelayMs = RECONNECT_MIN_MS;
      this.logger.info({ device: message.hello.device, slots: message.hello.maxInflightBatches }, 'executor connected');
      for (const wake of this.readyWaiters.splice(0)) wake();
      this.onCapacity();
    } else if (message.modelLoadResult) {
      const result = message.modelLoadResult;
      const pending = this.pendingLoads.get(result.requestId);
      this.pendingLoads.delete(result.requestId);
      if (result.errorCode === 0 && result.model) this.remember(result.model);
      if (result.errorCode === 0) pending?.resolve(result);
      else pending?.reject(new NexusError(result.errorCode as ErrorCode, result.errorMessage));
    } else if (message.modelUnloaded) {
      // The executor freed a version on its own (its GPU memory budget): no batch goes here for it
      // until the pool has loaded it here again, when a batch needs it.
      const key = modelKeyOf(message.modelUnloaded);
      this.forget(key);
      this.logger.warn({ model: key, reason: message.modelUnloaded.reason }, 'executor unloaded a model');
      this.onModelUnloaded(key);
    } else if (message.sequenceEvent) {
      const event = message.sequenceEvent;
      const listener = this.sequences.get(event.sequenceId);
      // Unknown: a sequence already ended here (its executor's answer to a cancel after it finished).
      if (!listener) return;
      if (event.finishReason !== '') this.sequences.delete(event.sequenceId);
      listener(event);
    } else if (message.batchResult) {
      const pending = this.pendingBatches.get(message.batchResult.batchId);
      // Unknown: answered after its timeout, when the batch had already been failed.
      if (!pending) return;
      const result = message.batchResult.chunk ? this.assemble(message.batchResult, pending) : message.batchResult;
      if (!result) return;
      this.settleBatch(result.batchId, pending);
      // Bad input or a passed deadline says nothing about the executor's health.
      const executorFault = result.errorCode === ErrorCode.INTERNAL || result.errorCode === ErrorCode.UNAVAILABLE
        || result.errorCode === ErrorCode.DATA_LOSS;
      this.recordOutcome(!executorFault);
      if (result.errorCode === 0) pending.resolve(result);
      else if (pending.key && isNotLoadedRefusal(result.errorCode, result.errorMessage)) {
        // Forgotten here, so no batch comes to this executor for it until the pool (told below,
        // through onCapacity) has loaded it here again; the batch itself is queued again.
        this.forget(pending.key);
        this.logger.warn({ model: pending.key, reason: result.errorMessage }, 'executor does not hold a model it was sent; loading it again');
        pending.reject(new NexusError(ErrorCode.UNAVAILABLE, `executor ${this.address} did not hold ${pending.key}; it is being loaded again and the batch will run again`));
      } else pending.reject(new NexusError(result.errorCode as ErrorCode, result.errorMessage));
      this.onCapacity();
    }
  }

  /**
   * Adds a chunk to its batch's result: the whole result once every chunk is in, undefined while
   * some are missing, a failed result when the chunks do not fit together.
   */
  private assemble(chunk: BatchResult, pending: Pending<BatchResult>): BatchResult | undefined {
    pending.assembly ??= new ResultAssembly(chunk.batchId, this.maxResultBytes);
    try {
      return pending.assembly.add(chunk);
    } catch (error) {
      const coded = NexusError.from(error);
      this.logger.warn({ batchId: chunk.batchId, code: coded.code, reason: coded.message }, 'executor sent a chunked result that cannot be put together');
      return { batchId: chunk.batchId, outputs: [], errorCode: coded.code, errorMessage: coded.message, batchSize: 0, gpuNs: 0, executeNs: 0 };
    }
  }

  /** Forgets a batch that has its answer (or gave up waiting) and frees its slot. */
  private settleBatch(batchId: number, pending: Pending<BatchResult>): void {
    clearTimeout(pending.timer);
    this.pendingBatches.delete(batchId);
    this.inflight -= 1;
  }

  private disconnected(stream: ExecutorStream): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.hello = undefined;
    this.loaded.clear();
    this.loadedModels.clear();
    const lost = new NexusError(ErrorCode.UNAVAILABLE, `executor ${this.address} disconnected`);
    const sequences = [...this.sequences];
    this.sequences.clear();
    for (const [sequenceId, listener] of sequences) listener(lostSequenceEvent(sequenceId, lost.message));
    for (const pending of [...this.pendingLoads.values(), ...this.pendingBatches.values()]) {
      clearTimeout(pending.timer);
      pending.reject(lost);
    }
    this.pendingLoads.clear();
    this.pendingBatches.clear();
    this.inflight = 0;
    if (this.closed) return;
    this.logger.warn({ retryInMs: this.reconnectDelayMs }, 'executor stream lost; reconnecting');
    setTimeout(() => this.connect(), this.reconnectDelayMs).unref();
    this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, RECONNECT_MAX_MS);
  }

  private remember(model: LoadedModel): void {
    const key = modelKeyOf(model);
    this.loaded.add(key);
    this.loadedModels.set(key, model);
  }

  private forget(key: ModelKey): void {
    this.loaded.delete(key);
    this.loadedModels.delete(key);
  }

  /** What the executor reported when it loaded `key`: its task and KV capacity; undefined when it does not hold it. */
  loadedModel(key: ModelKey): LoadedModel | undefined {
    return this.loadedModels.get(key);
  }

  /** Sequences running on this executor now. */
  get runningSequences(): number {
    return this.sequences.size;
  }

  /**
   * Starts a sequence; its events go to `onEvent`, the last one with a finish reason (an
   * UNAVAILABLE 'error' one if the stream is lost first). Throws UNAVAILABLE when not connected.
   */
  startSequence(start: Omit<StartSequence, 'sequenceId'>, onEvent: (event: SequenceEvent) => void): SequenceHandle {
    const sequenceId = this.nextId++;
    this.send({ startSequence: { ...start, sequenceId } });
    this.sequences.set(sequenceId, onEvent);
    return {
      sequenceId,
      // Answered by the sequence's final event (finish_reason "cancelled"); nothing to send once it ended.
      cancel: () => {
        if (this.sequences.has(sequenceId) && this.stream) this.stream.write({ cancelSequence: { sequenceId } });
      },
    };
  }

  private send(message: RouterMessage): void {
    if (!this.stream) throw new NexusError(ErrorCode.UNAVAILABLE, `executor ${this.address} is not connected`);
    this.stream.write(message);
  }

  /**
   * Asks the executor to load a version warmed up to `maxBatchSize` (the router's effective max
   * batch size; 0: the record's); resolves when it is compiled and ready.
   */
  load(version: ModelVersion, maxBatchSize = 0): Promise<ModelLoadResult> {
    const requestId = this.nextId++;
    return new Promise<ModelLoadResult>((resolve, reject) => {
      this.pendingLoads.set(requestId, { resolve, reject });
      try {
        // The load is part of whichever request's trace asked for it first.
        this.send({ loadModel: { requestId, version, traceContext: carrierOf(trace.getActiveSpan()), maxBatchSize } });
      } catch (error) {
        this.pendingLoads.delete(requestId);
        reject(NexusError.from(error));
      }
    });
  }

  /** Tells the executor to free a version (fire and forget; a lost stream unloads everything anyway). */
  unload(modelName: string, version: number): void {
    this.forget(modelKey(modelName, version));
    if (this.stream) this.stream.write({ unloadModel: { modelName, version } });
  }

  /**
   * Runs a batch; the caller must have checked `freeSlots`. Rejects UNAVAILABLE when the stream
   * breaks or no answer comes within the batch timeout: either way the batch may run elsewhere.
   */
  execute(batch: Omit<ExecuteBatch, 'batchId'>): Promise<BatchResult> {
    const batchId = this.nextId++;
    return new Promise<BatchResult>((resolve, reject) => {
      const pending: Pending<BatchResult> = { resolve, reject, key: modelKey(batch.modelName, batch.version) };
      this.pendingBatches.set(batchId, pending);
      this.inflight += 1;
      try {
        this.send({ executeBatch: { ...batch, batchId } });
      } catch (error) {
        this.pendingBatches.delete(batchId);
        this.inflight -= 1;
        reject(NexusError.from(error));
        return;
      }
      // A batch whose callers allow it longer than the timeout is given that long: a slow batch
      // is not a hung executor, and running it again elsewhere would only run it twice.
      const timeoutMs = batch.deadlineUnixMs > 0 ? Math.max(this.batchTimeoutMs, batch.deadlineUnixMs - Date.now()) : this.batchTimeoutMs;
      pending.timer = setTimeout(() => {
        if (this.pendingBatches.get(batchId) !== pending) return;
        this.settleBatch(batchId, pending);
        this.recordOutcome(false);
        this.logger.warn({ batchId, timeoutMs }, 'executor did not answer a batch in time; it may run elsewhere');
        reject(new NexusError(ErrorCode.UNAVAILABLE,
          `executor ${this.address} did not answer batch ${batchId} within ${timeoutMs} ms`));
        this.onCapacity();
      }, timeoutMs);
      pending.timer.unref();
    });
  }

  close(): void {
    this.closed = true;
    this.stream?.end();
    this.stream?.cancel();
    this.dialer.close();
  }
}
