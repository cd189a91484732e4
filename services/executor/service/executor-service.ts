/**
 * The executor's gRPC API. A router opens one long-lived Connect stream; the executor greets it
 * with its device and capacity, then loads models and runs batches as the router asks, answering
 * each by id. Coded errors travel as codes in the answer; anything else is logged in full.
 *
 * Nothing on the stream is trusted: a stream may have at most MAX_INFLIGHT_BATCHES batches in
 * flight (more are answered RESOURCE_EXHAUSTED at once), a result larger than the message limit
 * is sent in chunks (one oversized message would end the whole call), a result over the
 * per-result budget is answered RESOURCE_EXHAUSTED instead of being sent, and when the GPU device
 * is lost every batch in flight is answered UNAVAILABLE.
 *
 * Several routers may share an executor, each on its own stream: each stream has its own
 * MAX_INFLIGHT_BATCHES slots, and one router's UnloadModel frees a version only when no other
 * open stream has loaded it or run a batch on it (the routers serve independently of each other).
 */
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  ExecutorMessage, ExecutorService, type BatchResult, type ExecuteBatch, type RouterMessage, type StartSequence,
} from '../../protocol/generated/nexus/executor/v1/executor.ts';
import { ErrorCode, NexusError, modelKey, modelKeyOf } from '../../domain/index.ts';
import { unary } from '../../rpc/handlers.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { SequenceHandle } from '../llm/index.ts';
import type { ExecutorState } from './executor-state.ts';
import { chunkBytesFor, chunkResult } from './result-chunks.ts';

/** Batches the router may have in flight on one stream at once (advertised in the hello). */
export const MAX_INFLIGHT_BATCHES = 4;

/** How long an INTERNAL batch failure waits for a device loss to be reported, in milliseconds. */
const DEVICE_LOSS_GRACE_MS = 20;

/** Most output bytes one batch result may have by default: 1 GiB (sent in chunks past the message limit). */
const DEFAULT_MAX_RESULT_BYTES = 1024 * 1024 * 1024;

/** Protobuf framing a result may add beyond its tensors' bytes, names and shapes (an upper bound). */
const RESULT_OVERHEAD_BYTES = 256;

/** A failed batch's answer. */
function failure(batchId: number, error: NexusError): BatchResult {
  return { batchId, outputs: [], errorCode: error.code, errorMessage: error.message, batchSize: 0, gpuNs: 0, executeNs: 0 };
}

/**
 * The encoded size of `result` as an ExecutorMessage, or a number over `limit` when it is over:
 * a cheap upper bound first; when the outputs' bytes alone are over `limit` those bytes (no
 * encoding a result that goes in chunks anyway); the exact encoding only in between.
 */
export function encodedResultBytes(result: BatchResult, limit: number): number {
  let bound = RESULT_OVERHEAD_BYTES + Buffer.byteLength(result.errorMessage);
  let dataBytes = 0;
  for (const tensor of result.outputs) {
    dataBytes += tensor.data.byteLength;
    bound += tensor.data.byteLength + Buffer.byteLength(tensor.name) + Buffer.byteLength(tensor.datatype) + 11 * tensor.shape.length + 32;
  }
  if (bound <= limit) return bound;
  if (dataBytes > limit) return dataBytes;
  return ExecutorMessage.encode({ batchResult: result }).finish().byteLength;
}

export interface ExecutorServiceOptions {
  /** The GPU's description for the greeting. */
  device: string;
  /** Largest message the stream may send, in bytes (the server's limit); larger results go in chunks. */
  maxMessageBytes: number;
  /**
   * Most output bytes one batch result may have; a larger one is answered RESOURCE_EXHAUSTED.
   * Default DEFAULT_MAX_RESULT_BYTES (1 GiB).
   */
  maxResultBytes?: number;
}

/** The Executor service over `state`. */
export function createExecutorService(state: ExecutorState, options: ExecutorServiceOptions, logger: Logger): UntypedServiceImplementation {
  /** The open streams that use each version (loaded it or ran a batch on it), by model key. */
  const users = new Map<string, Set<object>>();
  const use = (stream: object, modelName: string, version: number) => {
    const key = modelKey(modelName, version);
    let streams = users.get(key);
    if (!streams) users.set(key, streams = new Set());
    streams.add(stream);
  };
  /** Drops `stream`'s use of a version; true when no other open stream uses it. */
  const release = (stream: object, key: string) => {
    const streams = users.get(key);
    streams?.delete(stream);
    if (streams?.size) return false;
    users.delete(key);
    return true;
  };
  return {
    connect(call: ServerDuplexStream<RouterMessage, ExecutorMessage>) {
      const stream = {};
      const send = (message: ExecutorMessage) => {
        if (!call.cancelled && call.writable) call.write(message);
      };
      const maxResultBytes = options.maxResultBytes ?? DEFAULT_MAX_RESULT_BYTES;
      /** Batches of this stream without an answer yet. */
      const inflight = new Set<number>();
      /** Text-generation sequences of this stream that have not ended, by the router's sequence id. */
      const sequences = new Map<number, SequenceHandle>();
      const answer = (result: BatchResult) => {
        if (!inflight.delete(result.batchId)) return; // answered already (device lost)
        const bytes = result.errorCode === 0 ? encodedResultBytes(result, options.maxMessageBytes) : 0;
        if (bytes <= options.maxMessageBytes) {
          send({ batchResult: result });
          return;
        }
        const outputBytes = result.outputs.reduce((sum, tensor) => sum + tensor.data.byteLength, 0);
        if (outputBytes > maxResultBytes) {
          state.requestsFailed += 1;
          send({ batchResult: failure(result.batchId, new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
            `the result of batch ${result.batchId} has ${outputBytes} bytes of outputs, over the per-result budget of ${maxResultBytes} bytes; send fewer rows per batch`)) });
          return;
        }
        for (const chunk of chunkResult(result, chunkBytesFor(options.maxMessageBytes))) send({ batchResult: chunk });
      };
      const unsubscribe = state.subscribe((event) => {
        if (event.kind === 'unloaded') {
          send({ modelUnloaded: { modelName: event.modelName, version: event.version, reason: event.reason } });
        } else {
          const lost = new NexusError(ErrorCode.UNAVAILABLE, `GPU device lost: ${event.reason}`);
          for (const batchId of [...inflight]) answer(failure(batchId, lost));
          for (const handle of [...sequences.values()]) handle.fail(lost);
        }
      });
      send({
        hello: {
          executorId: state.id,
          device: options.device,
          maxInflightBatches: MAX_INFLIGHT_BATCHES,
          loadedModels: [...state.models.values()].filter((entry) => entry.resident).map((entry) => entry.loaded),
        },
      });
      const execute = (batch: ExecuteBatch) => {
        if (inflight.has(batch.batchId)) {
          send({ batchResult: failure(batch.batchId, new NexusError(ErrorCode.INVALID_ARGUMENT, `batch_id ${batch.batchId} is already in flight on this stream`)) });
          return;
        }
        if (inflight.size >= MAX_INFLIGHT_BATCHES) {
          state.requestsFailed += 1;
          send({ batchResult: failure(batch.batchId, new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
            `batch ${batch.batchId}: ${inflight.size} batches are in flight on this stream, the most it may have is ${MAX_INFLIGHT_BATCHES} (max_inflight_batches)`)) });
          return;
        }
        inflight.add(batch.batchId);
        use(stream, batch.modelName, batch.version);
        Promise.resolve().then(() => state.execute(batch)).then(answer, async (error: unknown) => {
          let coded = NexusError.from(error);
          // A device loss can fail a batch before `device.lost` settles: give it a moment to.
          if (coded.code === ErrorCode.INTERNAL) await new Promise((resolve) => setTimeout(resolve, DEVICE_LOSS_GRACE_MS));
          if (state.deviceLostReason !== undefined) coded = new NexusError(ErrorCode.UNAVAILABLE, `GPU device lost: ${state.deviceLostReason}`);
          state.requestsFailed += 1;
          if (coded.code === ErrorCode.INTERNAL) logger.error({ err: error, batch: batch.batchId }, 'batch failed');
          answer(failure(batch.batchId, coded));
        });
      };
      /** Starts a sequence whose events go down this stream; a refusal is its one, final event. */
      const startSequence = (request: StartSequence) => {
        const id = request.sequenceId;
        const refuse = (error: NexusError) => send({ sequenceEvent: {
          sequenceId: id, tokens: [], finishReason: 'error', errorCode: error.code, errorMessage: error.message,
          promptTokens: request.promptTokenIds.length, generatedTokens: 0, firstTokenNs: 0, preemptions: 0,
        } });
        if (sequences.has(id)) {
          refuse(new NexusError(ErrorCode.INVALID_ARGUMENT, `start_sequence.sequence_id ${id} is already running on this stream`));
          return;
        }
        // A stream generating on a version uses it: another router's UnloadModel keeps it loaded.
        use(stream, request.modelName, request.version);
        try {
          sequences.set(id, state.startSequence(request, (event) => {
            if (event.finishReason !== '') sequences.delete(id);
            send({ sequenceEvent: event });
          }));
        } catch (error) {
          const coded = NexusError.from(error);
          if (coded.code === ErrorCode.INTERNAL) logger.error({ err: error, sequence: id }, 'sequence failed to start');
          refuse(coded);
        }
      };
      call.on('data', (message: RouterMessage) => {
        if (message.loadModel) {
          const request = message.loadModel;
          if (request.version) use(stream, request.version.modelName, request.version.version);
          const started = process.hrtime.bigint();
          Promise.resolve().then(() => state.load(request)).then(
            () => send({ modelLoadResult: {
              requestId: request.requestId, errorCode: 0, errorMessage: '',
              model: state.models.get(modelKeyOf(request.version!))?.loaded,
              loadNs: Number(process.hrtime.bigint() - started),
            } }),
            (error: unknown) => {
              const coded = NexusError.from(error);
              if (coded.code === ErrorCode.INTERNAL) logger.error({ err: error }, 'model load failed');
              else logger.warn({ code: coded.code, message: coded.message }, 'model load refused');
              send({ modelLoadResult: {
                requestId: request.requestId, model: undefined, errorCode: coded.code, errorMessage: coded.message, loadNs: 0,
              } });
            },
          );
        } else if (message.unloadModel) {
          const { modelName, version } = message.unloadModel;
          // Another router still serving it keeps it loaded.
          if (release(stream, modelKey(modelName, version))) state.unload(modelName, version);
          else logger.info({ model: modelKey(modelName, version) }, 'unload asked by one router; kept for the others that use it');
        } else if (message.executeBatch) {
          execute(message.executeBatch);
        } else if (message.startSequence) {
          startSequence(message.startSequence);
        } else if (message.cancelSequence) {
          // Unknown ids are sequences that ended meanwhile: their final event is on its way.
          sequences.get(message.cancelSequence.sequenceId)?.cancel();
        }
      });
      // A closed stream uses nothing any more; what it loaded stays loaded (its router reconnects to it).
      let closed = false;
      const closeStream = () => {
        unsubscribe();
        if (closed) return;
        closed = true;
        for (const key of [...users.keys()]) release(stream, key);
      };
      call.on('end', () => call.end());
      // A closed stream's sequences have nobody to stream to: they end at once, freeing their KV blocks.
      const endSequences = () => {
        for (const handle of [...sequences.values()]) handle.cancel();
      };
      call.on('close', endSequences);
      call.on('cancelled', endSequences);
      call.on('error', endSequences);
      call.on('close', closeStream);
      call.on('cancelled', closeStream);
      call.on('error', (error) => {
        closeStream();
        logger.debug({ err: error }, 'router stream closed');
      });
    },

    getStats: unary('GetStats', logger, async () => state.stats()),
  };
}

export { ExecutorService };
