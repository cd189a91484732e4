/**
 * The executor's gRPC API. A router opens one long-lived Connect stream; the executor greets it
 * with its device and capacity, then loads models and runs batches as the router asks, answering
 * each by id. Coded errors travel as codes in the answer; anything else is logged in full.
 */
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { ExecutorService, type ExecutorMessage, type RouterMessage } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import { ErrorCode, NexusError, modelKeyOf } from '../../domain/index.ts';
import { unary } from '../../rpc/handlers.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { ExecutorState } from './executor-state.ts';

/** Batches the router may have in flight on this executor at once. */
export const MAX_INFLIGHT_BATCHES = 4;

/** The Executor service over `state`; `device` is the GPU's description for the greeting. */
export function createExecutorService(state: ExecutorState, device: string, logger: Logger): UntypedServiceImplementation {
  return {
    connect(call: ServerDuplexStream<RouterMessage, ExecutorMessage>) {
      const send = (message: ExecutorMessage) => {
        if (!call.cancelled && call.writable) call.write(message);
      };
      send({
        hello: {
          executorId: state.id,
          device,
          maxInflightBatches: MAX_INFLIGHT_BATCHES,
          loadedModels: [...state.models.values()].map((entry) => entry.loaded),
        },
      });
      call.on('data', (message: RouterMessage) => {
        if (message.loadModel) {
          const request = message.loadModel;
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
              send({ modelLoadResult: {
                requestId: request.requestId, model: undefined, errorCode: coded.code, errorMessage: coded.message, loadNs: 0,
              } });
            },
          );
        } else if (message.unloadModel) {
          state.unload(message.unloadModel.modelName, message.unloadModel.version);
        } else if (message.executeBatch) {
          const batch = message.executeBatch;
          state.execute(batch).then(
            (result) => send({ batchResult: result }),
            (error: unknown) => {
              const coded = NexusError.from(error);
              state.requestsFailed += 1;
              if (coded.code === ErrorCode.INTERNAL) logger.error({ err: error, batch: batch.batchId }, 'batch failed');
              send({ batchResult: {
                batchId: batch.batchId, outputs: [], errorCode: coded.code, errorMessage: coded.message,
                batchSize: 0, gpuNs: 0, executeNs: 0,
              } });
            },
          );
        }
      });
      call.on('end', () => call.end());
      call.on('error', (error) => logger.debug({ err: error }, 'router stream closed'));
    },

    getStats: unary('GetStats', logger, async () => state.stats()),
  };
}

export { ExecutorService };
