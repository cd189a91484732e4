/**
 * The router's end of one executor's long-lived Connect stream. Loads and batches go down with an
 * id; answers come back by id. When the stream breaks, everything pending on it fails with
 * UNAVAILABLE at once (so the caller can retry elsewhere) and the link reconnects with backoff.
 */
import { credentials, type ClientDuplexStream } from '@grpc/grpc-js';
import {
  ExecutorClient, type BatchResult, type ExecuteBatch, type ExecutorHello, type ExecutorMessage, type ModelLoadResult,
  type RouterMessage,
} from '../protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../protocol/generated/nexus/registry/v1/registry.ts';
import { trace } from '@opentelemetry/api';
import { ErrorCode, NexusError } from '../domain/errors.ts';
import { carrierOf } from '../telemetry/tracing.ts';
import type { Logger } from '../telemetry/logger.ts';

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;
/** Consecutive failed batches that open the circuit: the executor gets no batches for a while. */
export const CIRCUIT_FAILURE_THRESHOLD = 5;
/** How long an open circuit stays open, in milliseconds. */
export const CIRCUIT_OPEN_MS = 5_000;

interface Pending<T> {
  resolve(value: T): void;
  reject(error: NexusError): void;
}

export class ExecutorLink {
  readonly address: string;
  hello: ExecutorHello | undefined;
  /** Batches sent and not yet answered. */
  inflight = 0;
  /** "name:version" of the models this executor has loaded. */
  readonly loaded = new Set<string>();
  /** Called whenever capacity frees up or the link becomes ready. */
  onCapacity: () => void = () => {};

  private readonly client: ExecutorClient;
  private readonly logger: Logger;
  private stream: ClientDuplexStream<RouterMessage, ExecutorMessage> | undefined;
  private nextId = 1;
  private readonly pendingLoads = new Map<number, Pending<ModelLoadResult>>();
  private readonly pendingBatches = new Map<number, Pending<BatchResult>>();
  private readyWaiters: Array<() => void> = [];
  private reconnectDelayMs = RECONNECT_MIN_MS;
  private closed = false;

  constructor(address: string, logger: Logger) {
    this.address = address;
    this.logger = logger.child({ executor: address });
    this.client = new ExecutorClient(address, credentials.createInsecure(), {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    });
    this.connect();
  }

  get ready(): boolean {
    return this.hello !== undefined && this.stream !== undefined;
  }

  private consecutiveFailures = 0;
  private circuitOpenUntilMs = 0;

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
    const stream = this.client.connect();
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
      for (const model of message.hello.loadedModels) this.loaded.add(`${model.modelName}:${model.version}`);
      this.reconnectDelayMs = RECONNECT_MIN_MS;
      this.logger.info({ device: message.hello.device, slots: message.hello.maxInflightBatches }, 'executor connected');
      for (const wake of this.readyWaiters.splice(0)) wake();
      this.onCapacity();
    } else if (message.modelLoadResult) {
      const result = message.modelLoadResult;
      const pending = this.pendingLoads.get(result.requestId);
      this.pendingLoads.delete(result.requestId);
      if (result.errorCode === 0 && result.model) this.loaded.add(`${result.model.modelName}:${result.model.version}`);
      if (result.errorCode === 0) pending?.resolve(result);
      else pending?.reject(new NexusError(result.errorCode as ErrorCode, result.errorMessage));
    } else if (message.batchResult) {
      const result = message.batchResult;
      const pending = this.pendingBatches.get(result.batchId);
      if (!pending) return;
      this.pendingBatches.delete(result.batchId);
      this.inflight -= 1;
      // Bad input or a passed deadline says nothing about the executor's health.
      const executorFault = result.errorCode === ErrorCode.INTERNAL || result.errorCode === ErrorCode.UNAVAILABLE;
      this.recordOutcome(!executorFault);
      if (result.errorCode === 0) pending.resolve(result);
      else pending.reject(new NexusError(result.errorCode as ErrorCode, result.errorMessage));
      this.onCapacity();
    }
  }

  private disconnected(stream: ClientDuplexStream<RouterMessage, ExecutorMessage>): void {
    if (this.stream !== stream) return;
    this.stream = undefined;
    this.hello = undefined;
    this.loaded.clear();
    const lost = new NexusError(ErrorCode.UNAVAILABLE, `executor ${this.address} disconnected`);
    for (const pending of [...this.pendingLoads.values(), ...this.pendingBatches.values()]) pending.reject(lost);
    this.pendingLoads.clear();
    this.pendingBatches.clear();
    this.inflight = 0;
    if (this.closed) return;
    this.logger.warn({ retryInMs: this.reconnectDelayMs }, 'executor stream lost; reconnecting');
    setTimeout(() => this.connect(), this.reconnectDelayMs).unref();
    this.reconnectDelayMs = Math.min(this.reconnectDelayMs * 2, RECONNECT_MAX_MS);
  }

  private send(message: RouterMessage): void {
    if (!this.stream) throw new NexusError(ErrorCode.UNAVAILABLE, `executor ${this.address} is not connected`);
    this.stream.write(message);
  }

  /** Asks the executor to load a version; resolves when it is compiled and ready. */
  load(version: ModelVersion): Promise<ModelLoadResult> {
    const requestId = this.nextId++;
    return new Promise<ModelLoadResult>((resolve, reject) => {
      this.pendingLoads.set(requestId, { resolve, reject });
      try {
        // The load is part of whichever request's trace asked for it first.
        this.send({ loadModel: { requestId, version, traceContext: carrierOf(trace.getActiveSpan()) } });
      } catch (error) {
        this.pendingLoads.delete(requestId);
        reject(NexusError.from(error));
      }
    });
  }

  /** Tells the executor to free a version (fire and forget; a lost stream unloads everything anyway). */
  unload(modelName: string, version: number): void {
    this.loaded.delete(`${modelName}:${version}`);
    if (this.stream) this.stream.write({ unloadModel: { modelName, version } });
  }

  /** Runs a batch; the caller must have checked `freeSlots`. */
  execute(batch: Omit<ExecuteBatch, 'batchId'>): Promise<BatchResult> {
    const batchId = this.nextId++;
    return new Promise<BatchResult>((resolve, reject) => {
      this.pendingBatches.set(batchId, { resolve, reject });
      this.inflight += 1;
      try {
        this.send({ executeBatch: { ...batch, batchId } });
      } catch (error) {
        this.pendingBatches.delete(batchId);
        this.inflight -= 1;
        reject(NexusError.from(error));
      }
    });
  }

  close(): void {
    this.closed = true;
    this.stream?.end();
    this.stream?.cancel();
    this.client.close();
  }
}
