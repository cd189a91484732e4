/**
 * inference.GRPCInferenceService, the Open Inference Protocol (KServe v2): what Triton and KServe
 * clients call. Every request is checked against the model's signature before it is queued.
 */
import type { ServerDuplexStream, ServerUnaryCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  GRPCInferenceServiceService, type InferTensorContents, type ModelInferRequest, type ModelInferResponse,
  type ModelInferResponse_InferOutputTensor, type ModelMetadataResponse, type ModelStreamInferResponse,
} from '../protocol/generated/inference/grpc_service.ts';
import type { Tensor } from '../protocol/generated/nexus/executor/v1/executor.ts';
import { isDatatype, viewAs } from '../onnx/index.ts';
import { codeName, ErrorCode, NexusError } from '../rpc/errors.ts';
import { unary } from '../rpc/handlers.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { ModelCatalog } from './model-catalog.ts';
import { validateInferRequest } from './request-validation.ts';
import { cacheKeyOf } from './response-cache.ts';
import { schedulingOf } from './scheduling.ts';

export const SERVER_NAME = 'nexusml';
export const SERVER_VERSION = '0.1.0';

function emptyContents(): InferTensorContents {
  return {
    boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [],
    fp32Contents: [], fp64Contents: [], bytesContents: [],
  };
}

/** Typed contents for an output tensor, in the field its datatype uses. */
function typedContents(tensor: Tensor): InferTensorContents {
  const contents = emptyContents();
  if (!isDatatype(tensor.datatype)) return contents;
  const values = viewAs(tensor.datatype, tensor.data);
  switch (tensor.datatype) {
    case 'FP32': contents.fp32Contents = Array.from(values as Float32Array); break;
    case 'FP64': contents.fp64Contents = Array.from(values as Float64Array); break;
    case 'INT8': case 'INT16': case 'INT32': contents.intContents = Array.from(values as Int32Array); break;
    case 'UINT8': case 'UINT16': case 'UINT32': contents.uintContents = Array.from(values as Uint32Array); break;
    case 'INT64': contents.int64Contents = Array.from(values as BigInt64Array, Number); break;
    case 'UINT64': contents.uint64Contents = Array.from(values as BigUint64Array, Number); break;
    case 'BOOL': contents.boolContents = Array.from(values as Uint8Array, (value) => value !== 0); break;
    default: throw new NexusError(ErrorCode.FAILED_PRECONDITION, `output datatype ${tensor.datatype} needs raw contents; send inputs in raw_input_contents`);
  }
  return contents;
}

/** An AbortSignal that fires when the client cancels or its call ends early. */
function cancellationOf(call: ServerUnaryCall<ModelInferRequest, ModelInferResponse>): AbortSignal {
  const controller = new AbortController();
  call.on('cancelled', () => controller.abort());
  return controller.signal;
}

/** The call's deadline in Unix milliseconds, or undefined when the client set none. */
function deadlineOf(call: { getDeadline(): Date | number }): number | undefined {
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
  /** One request from any entry point: resolve, validate, schedule, batch, answer. */
  async function infer(request: ModelInferRequest, context: { callDeadlineMs: number | undefined; signal: AbortSignal }): Promise<ModelInferResponse> {
    const model = await catalog.resolve(request.modelName, request.modelVersion);
    const validated = validateInferRequest(request, model.signature, model.policy.maxBatchSize);
    const { priority, deadlineMs } = schedulingOf(request.parameters, {
      defaultPriority: model.defaultPriority, callDeadlineMs: context.callDeadlineMs, nowMs: Date.now(),
    });
    const cacheKey = model.cache ? cacheKeyOf(`${model.version.modelName}:${model.version.version}`, validated) : undefined;
    let outputs = cacheKey ? model.cache!.get(cacheKey) : undefined;
    if (!outputs) {
      await model.loaded;
      outputs = await model.batcher.submit(validated, deadlineMs, context.signal, priority);
      if (cacheKey) model.cache!.set(cacheKey, outputs);
    }
    const tensors = validated.outputNames.map((name) => {
      const tensor = outputs.get(name);
      if (!tensor) throw new NexusError(ErrorCode.INTERNAL, `the executor returned no output '${name}'`);
      return tensor;
    });
    const described = (tensor: Tensor, contents?: InferTensorContents): ModelInferResponse_InferOutputTensor => ({
      name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, parameters: {}, contents,
    });
    return {
      modelName: model.version.modelName,
      modelVersion: String(model.version.version),
      id: request.id,
      parameters: {},
      outputs: tensors.map((tensor) => described(tensor, validated.rawOutput ? undefined : typedContents(tensor))),
      rawOutputContents: validated.rawOutput ? tensors.map((tensor) => tensor.data) : [],
    };
  }

  return {
    serverLive: unary('ServerLive', logger, async () => ({ live: true })),
    serverReady: unary('ServerReady', logger, async () => ({ ready: isServerReady() })),
    serverMetadata: unary('ServerMetadata', logger, async () => ({
      name: SERVER_NAME, version: SERVER_VERSION, extensions: [],
    })),

    modelReady: unary('ModelReady', logger, async (request: { name: string; version: string }) => {
      try {
        const model = await catalog.resolve(request.name, request.version);
        return { ready: catalog.isLoaded(model.version) };
      } catch (error) {
        if (NexusError.from(error).code === ErrorCode.NOT_FOUND) return { ready: false };
        throw error;
      }
    }),

    modelMetadata: unary('ModelMetadata', logger, async (request: { name: string; version: string }): Promise<ModelMetadataResponse> => {
      const model = await catalog.resolve(request.name, request.version);
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
