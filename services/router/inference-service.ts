/**
 * inference.GRPCInferenceService, the Open Inference Protocol (KServe v2): what Triton and KServe
 * clients call. Every request is checked against the model's signature before it is queued.
 */
import type { ServerDuplexStream, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  GRPCInferenceServiceService, type ModelInferRequest, type ModelInferResponse, type ModelMetadataResponse,
  type ModelStreamInferResponse,
} from '../protocol/generated/inference/grpc_service.ts';
import { codeName, ErrorCode, NexusError } from '../domain/errors.ts';
import { unary } from '../rpc/handlers.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ModelCatalog } from './model-catalog.ts';
import type { CancelSignal } from './model-batcher.ts';
import { createInferencePipeline } from './inference-pipeline.ts';

export const SERVER_NAME = 'nexusml';
export const SERVER_VERSION = '0.1.0';

/**
 * The cancellation of one unary call: it fires when the client cancels or the call ends early.
 *
 * grpc-js emits 'cancelled' for every call once its stream closes, answered or not. By then an
 * answered request has left the queue and taken its listener with it, so the event costs
 * nothing; an AbortController would build an AbortError (with its stack trace) and dispatch an
 * event for every request served.
 */
class CallCancellation implements CancelSignal {
  aborted = false;
  private listeners: Array<() => void> = [];

  constructor(call: ServerUnaryCall<ModelInferRequest, ModelInferResponse>) {
    call.once('cancelled', () => this.abort());
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const index = this.listeners.indexOf(listener);
    if (index >= 0) this.listeners.splice(index, 1);
  }

  private abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    for (const listener of this.listeners.splice(0)) listener();
  }
}

export function cancellationOf(call: ServerUnaryCall<ModelInferRequest, ModelInferResponse>): CancelSignal {
  return new CallCancellation(call);
}

/** The call's deadline in Unix milliseconds, or undefined when the client set none. */
export function deadlineOf(call: { getDeadline(): Date | number }): number | undefined {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}

function writeStream(call: ServerDuplexStream<ModelInferRequest, ModelStreamInferResponse>, message: ModelStreamInferResponse): void {
  if (!call.cancelled && call.writable) call.write(message);
}

export function createInferenceService(
  catalog: ModelCatalog,
  isServerReady: () => boolean,
  logger: Logger,
): UntypedServiceImplementation {
  const { infer } = createInferencePipeline(catalog);

  return {
    serverLive: unary('ServerLive', logger, async () => ({ live: true })),
    serverReady: unary('ServerReady', logger, async () => ({ ready: isServerReady() })),
    serverMetadata: unary('ServerMetadata', logger, async () => ({
      name: SERVER_NAME, version: SERVER_VERSION, extensions: [],
    })),

    // Ready when every version the name and version route to now is loaded: the one traffic
    // goes to, or every arm of a split. A version being warmed for a move does not count until
    // traffic moves to it.
    modelReady: unary('ModelReady', logger, async (request: { name: string; version: string }) => {
      try {
        const { models } = await catalog.describe(request.name, request.version);
        return { ready: models.every((model) => catalog.isLoaded(model.version)) };
      } catch (error) {
        if (NexusError.from(error).code === ErrorCode.NOT_FOUND) return { ready: false };
        throw error;
      }
    }),

    // The version traffic goes to now (a split's control), with the alias and split followed.
    modelMetadata: unary('ModelMetadata', logger, async (request: { name: string; version: string }): Promise<ModelMetadataResponse> => {
      const described = await catalog.describe(request.name, request.version);
      const model = described.models[0];
      const versions = await catalog.listVersions(request.name);
      const { version, signature } = model;
      return {
        name: version.modelName,
        versions: versions.map(String),
        platform: version.format === 'onnx' ? 'onnx' : version.format,
        inputs: signature.inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
        outputs: signature.outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
        properties: {
          version: String(version.version),
          sha256: version.sha256,
          max_batch_size: String(model.policy.maxBatchSize),
          ...(version.lineage?.commit ? { git_commit: version.lineage.commit } : {}),
          ...(described.alias ? { alias: described.alias } : {}),
          ...(described.split ? { split: described.split.arms.map((arm) => `${arm.version}=${arm.weight}`).join(',') } : {}),
          ...(described.split?.stickyParameter ? { sticky_parameter: described.split.stickyParameter } : {}),
        },
      };
    }),

    modelInfer: unary('ModelInfer', logger, (request: ModelInferRequest, call) =>
      infer(request, { callDeadlineMs: deadlineOf(call), signal: cancellationOf(call) })),

    modelStreamInfer(call: ServerDuplexStream<ModelInferRequest, ModelStreamInferResponse>) {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      let pending = 0;
      let ended = false;
      const finishIfDone = () => {
        if (ended && pending === 0 && !call.cancelled) call.end();
      };
      call.on('data', (request: ModelInferRequest) => {
        pending += 1;
        infer(request, { callDeadlineMs: deadlineOf(call), signal: controller.signal }).then(
          (response) => writeStream(call, { errorMessage: '', inferResponse: response }),
          (error: unknown) => {
            const coded = NexusError.from(error);
            if (coded.code === ErrorCode.INTERNAL) logger.error({ err: error }, 'stream request failed');
            writeStream(call, {
              errorMessage: `${codeName(coded.code)}: ${coded.message}`,
              inferResponse: { modelName: request.modelName, modelVersion: request.modelVersion, id: request.id, parameters: {}, outputs: [], rawOutputContents: [] },
            });
          },
        ).finally(() => {
          pending -= 1;
          finishIfDone();
        });
      });
      call.on('end', () => {
        ended = true;
        finishIfDone();
      });
      call.on('error', () => controller.abort());
    },
  };
}

export { GRPCInferenceServiceService };
