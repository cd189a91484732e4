/**
 * inference.GRPCInferenceService, the Open Inference Protocol (KServe v2): what Triton and KServe
 * clients call. ModelInfer and ModelStreamInfer are thin: each request goes down the request path,
 * or, for a text-generation model, down the generation path with Triton's vLLM conventions
 * (generation/triton-vllm.ts), streamed on ModelStreamInfer.
 */
import type { ServerDuplexStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  GRPCInferenceServiceService, type ModelInferRequest, type ModelInferResponse, type ModelMetadataResponse, type ModelStreamInferResponse,
} from '../../protocol/generated/inference/grpc_service.ts';
import { codeName, ErrorCode, formatSplit, NexusError } from '../../domain/index.ts';
import { unary } from '../../rpc/handlers.ts';
import { undecodableReason } from '../../rpc/decode-guard.ts';
import { principalOf } from '../../rpc/call-principal.ts';
import { PrincipalLimiter } from '../../auth/rate-limits.ts';
import { authorizeModel } from '../../auth/access.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { ModelCatalog } from '../models/index.ts';
import type { RequestPath } from '../request-path/index.ts';
import type { TritonDispatch } from '../generation/index.ts';
import { cancellationOf, deadlineOf } from './call-context.ts';

export const SERVER_NAME = 'nexusml';
export const SERVER_VERSION = '0.1.0';

/**
 * Whether a stream reads on: it pauses while `maxInflight` requests are running or the client
 * has not read what was written to it. Pure.
 */
export function streamFlow(pending: number, unread: boolean, maxInflight: number): 'read' | 'pause' {
  return unread || pending >= maxInflight ? 'pause' : 'read';
}

export interface InferenceServiceParts {
  requests: RequestPath;
  /** For ModelReady and ModelMetadata. */
  catalog: ModelCatalog;
  /** ServerReady's answer: some executor is connected. */
  isServerReady: () => boolean;
  logger: Logger;
  /** Requests one ModelStreamInfer stream may have running; past it the stream is not read. Default 64. */
  maxStreamInflight?: number;
  /** Each principal's rate limits, applied to every ModelInfer call and ModelStreamInfer message. Default: a principal's own limits only. */
  limiter?: PrincipalLimiter;
  /** Text generation for models that generate text. Default none: every request goes to the request path. */
  generation?: TritonDispatch;
}

/** The handlers of inference.GRPCInferenceService. */
export function createInferenceService({
  requests, catalog, isServerReady, logger, maxStreamInflight = 64, limiter = new PrincipalLimiter(), generation,
}: InferenceServiceParts): UntypedServiceImplementation {
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
        return { ready: models.every((model) => catalog.isLoaded(model)) };
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
          ...(described.split ? { split: formatSplit(described.split.arms) } : {}),
          ...(described.split?.stickyParameter ? { sticky_parameter: described.split.stickyParameter } : {}),
        },
      };
    }),

    modelInfer: unary('ModelInfer', logger, (request: ModelInferRequest, call) => {
      const principal = principalOf(call);
      const context = { callDeadlineMs: deadlineOf(call), signal: cancellationOf(call) };
      const tensor = () => limiter.within(principal, request.inputs[0]?.shape[0], requests.handle, request, context);
      if (!generation || generation.tensorNow(request)) return tensor();
      // A generation counts its prompt and max_tokens as rows (tokens) against the rate limits.
      let answer: ModelInferResponse | undefined;
      return generation.answer(request, { ...context, admitTokens: (tokens) => limiter.admit(principal, tokens) }, 'unary',
        (response) => { answer = response; }, tensor).then(() => answer!);
    }),

    // Backpressure both ways: at most `maxStreamInflight` requests run at once, and while the
    // client does not read its answers (a write returns false) nothing more is read from it. A
    // client that stops reading holds at most that many answers in the router.
    modelStreamInfer(call: ServerDuplexStream<ModelInferRequest, ModelStreamInferResponse>) {
      const controller = new AbortController();
      call.on('cancelled', () => controller.abort());
      // Each message is admitted on its own; a refused one is answered like any failed request.
      const principal = principalOf(call);
      let pending = 0;
      let ended = false;
      let unread = false;
      const resumeOrPause = () => {
        if (streamFlow(pending, unread, maxStreamInflight) === 'pause') call.pause();
        else call.resume();
      };
      call.on('drain', () => {
        unread = false;
        resumeOrPause();
      });
      const write = (message: ModelStreamInferResponse) => {
        if (call.cancelled || !call.writable) return;
        if (!call.write(message)) unread = true;
      };
      const finishIfDone = () => {
        if (ended && pending === 0 && !call.cancelled) call.end();
      };
      call.on('data', (request: ModelInferRequest) => {
        const undecodable = undecodableReason(request);
        if (undecodable !== undefined) {
          write({
            errorMessage: `INVALID_ARGUMENT: the ModelStreamInfer request could not be decoded: ${undecodable}`,
            inferResponse: { modelName: '', modelVersion: '', id: '', parameters: {}, outputs: [], rawOutputContents: [] },
          });
          return;
        }
        // The call's credential was checked when the stream opened; the model each message names, here.
        try {
          authorizeModel(principal, request.modelName);
        } catch (error) {
          const coded = NexusError.from(error);
          write({
            errorMessage: `${codeName(coded.code)}: ${coded.message}`,
            inferResponse: { modelName: request.modelName, modelVersion: request.modelVersion, id: request.id, parameters: {}, outputs: [], rawOutputContents: [] },
          });
          return;
        }
        pending += 1;
        resumeOrPause();
        const context = { callDeadlineMs: deadlineOf(call), signal: controller.signal };
        const tensor = () => limiter.within(principal, request.inputs[0]?.shape[0], requests.handle, request, context);
        const send = (response: ModelInferResponse) => write({ errorMessage: '', inferResponse: response });
        // A text-generation model answers with a response per chunk when the request streams.
        const answered = !generation || generation.tensorNow(request) ? tensor().then(send)
          : generation.answer(request, { ...context, admitTokens: (tokens) => limiter.admit(principal, tokens) }, 'stream', send, tensor);
        answered.then(
          () => {},
          (error: unknown) => {
            const coded = NexusError.from(error);
            if (coded.code === ErrorCode.INTERNAL) logger.error({ err: error }, 'stream request failed');
            write({
              errorMessage: `${codeName(coded.code)}: ${coded.message}`,
              inferResponse: { modelName: request.modelName, modelVersion: request.modelVersion, id: request.id, parameters: {}, outputs: [], rawOutputContents: [] },
            });
          },
        ).finally(() => {
          pending -= 1;
          resumeOrPause();
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
