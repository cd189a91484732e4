/**
 * One inference request from any entry point (ModelInfer, ModelStreamInfer, the task API):
 * resolve the model, validate against its signature, read priority and deadline, then answer from
 * the response cache or through the batcher, and shape the protocol's response.
 */
import type {
  InferParameter, InferTensorContents, ModelInferRequest, ModelInferResponse, ModelInferResponse_InferOutputTensor,
} from '../protocol/generated/inference/grpc_service.ts';
import type { Tensor } from '../protocol/generated/nexus/executor/v1/executor.ts';
import { isDatatype, viewAs } from '../onnx/index.ts';
import { codeName, ErrorCode, NexusError } from '../domain/errors.ts';
import { metrics } from '../telemetry/metrics.ts';
import { inSyncSpan, tracerFor } from '../telemetry/tracing.ts';
import type { ModelCatalog, Routed, ServedModel } from './model-catalog.ts';
import { validateInferRequest, type ValidatedRequest } from './request-validation.ts';
import type { Experiment } from './experiment.ts';
import { cacheKeyOf } from './response-cache.ts';
import { schedulingOf } from './scheduling.ts';
import type { CancelSignal } from './model-batcher.ts';

/** A request that passed every check and knows its model, priority and deadline. */
export interface PreparedRequest {
  request: ModelInferRequest;
  model: ServedModel;
  validated: ValidatedRequest;
  priority: number;
  deadlineMs: number | undefined;
  /** The A/B split the request went through, if any. */
  experiment: Experiment | undefined;
}

export interface CallContext {
  /** The gRPC deadline, Unix milliseconds; undefined when the client set none. */
  callDeadlineMs: number | undefined;
  signal?: CancelSignal;
  /** Told the queue id once the request is queued. */
  onEnqueued?: (requestId: number) => void;
}

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

const tracer = tracerFor('router');

export function createInferencePipeline(catalog: ModelCatalog) {
  /** Checks a routed request and reads its scheduling; the model is held from here (see prepare). */
  function prepareRouted(request: ModelInferRequest, { model, experiment }: Routed, context: CallContext): PreparedRequest {
    catalog.hold(model);
    try {
      // Validation is pure and synchronous: its span needs no context of its own.
      const validated = inSyncSpan(tracer, 'validate', { attributes: { 'nexus.model': request.modelName } },
        () => validateInferRequest(request, model.signature, model.policy.maxBatchSize));
      const { priority, deadlineMs } = schedulingOf(request.parameters, {
        defaultPriority: model.defaultPriority, callDeadlineMs: context.callDeadlineMs, nowMs: Date.now(),
      });
      return { request, model, validated, priority, deadlineMs, experiment };
    } catch (error) {
      catalog.release(model);
      throw error;
    }
  }

  /**
   * Where a request goes. model_version is a number, an alias, 'latest' or empty; a split picks
   * the arm. A route already in use answers at once; only a model's first requests wait (for the
   * registry and the load).
   */
  function routed(request: ModelInferRequest): Routed | Promise<Routed> {
    return catalog.routeNow(request.modelName, request.modelVersion, request.parameters)
      ?? catalog.route(request.modelName, request.modelVersion, request.parameters);
  }

  /**
   * Routes and checks a request; throws INVALID_ARGUMENT / NOT_FOUND before anything queues. The
   * model stays held (never unloaded under it) until `execute` has queued it, so execute must
   * follow.
   */
  async function prepare(request: ModelInferRequest, context: CallContext): Promise<PreparedRequest> {
    return prepareRouted(request, await routed(request), context);
  }

  /** Answers a prepared request from the cache or through the batcher. */
  async function execute(prepared: PreparedRequest, context: CallContext): Promise<ModelInferResponse> {
    try {
      return await executeHeld(prepared, context);
    } finally {
      catalog.release(prepared.model);
    }
  }

  async function executeHeld(prepared: PreparedRequest, context: CallContext): Promise<ModelInferResponse> {
    const { request, validated } = prepared;
    let model = prepared.model;
    const cacheKey = model.cache ? cacheKeyOf(`${model.version.modelName}:${model.version.version}`, validated) : undefined;
    let outputs = cacheKey ? model.cache!.get(cacheKey) : undefined;
    if (cacheKey) metrics.cacheLookups.inc({ model: model.version.modelName, result: outputs ? 'hit' : 'miss' });
    // What the client can learn about how its request ran (Triton reports these as statistics).
    const parameters: Record<string, InferParameter> = { nexus_cache_hit: { boolParam: outputs !== undefined } };
    if (!outputs) {
      // No await between this and submit: once queued, the batch keeps the version loaded. A
      // loaded version that is still served is the one to queue on, without a turn of the loop.
      if (!model.ready || model.retired) model = await catalog.live(model);
      const answer = await model.batcher.submit(validated, {
        deadlineMs: prepared.deadlineMs, signal: context.signal, priority: prepared.priority, onEnqueued: context.onEnqueued,
      });
      outputs = answer.outputs;
      parameters.nexus_batch_size = { int64Param: answer.batchRows };
      parameters.nexus_gpu_us = { int64Param: Math.round(answer.gpuNs / 1000) };
      parameters.nexus_queue_us = { int64Param: Math.round(answer.queuedMs * 1000) };
      if (cacheKey) model.cache!.set(cacheKey, outputs);
    }
    const outputTensors: ModelInferResponse_InferOutputTensor[] = [];
    const rawOutputContents: Uint8Array[] = [];
    for (const name of validated.outputNames) {
      const tensor = outputs.get(name);
      if (!tensor) throw new NexusError(ErrorCode.INTERNAL, `the executor returned no output '${name}'`);
      outputTensors.push({
        name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, parameters: {},
        contents: validated.rawOutput ? undefined : typedContents(tensor),
      });
      if (validated.rawOutput) rawOutputContents.push(tensor.data);
    }
    return {
      modelName: model.version.modelName,
      modelVersion: String(model.version.version),
      id: request.id,
      parameters,
      outputs: outputTensors,
      rawOutputContents,
    };
  }

  /** Routes, checks and answers a request, counted and timed per model. */
  async function infer(request: ModelInferRequest, context: CallContext): Promise<ModelInferResponse> {
    // Counted from arrival to answer, so a drain waits for it wherever it is.
    catalog.requestArrived();
    const started = performance.now();
    // Labelled by model only once the model is known: a client-chosen name must not mint series.
    let model = 'unknown';
    let version = 0;
    let outcome = 'ok';
    let experiment: Experiment | undefined;
    try {
      const route = routed(request);
      const prepared = prepareRouted(request, route instanceof Promise ? await route : route, context);
      model = prepared.model.version.modelName;
      version = prepared.model.version.version;
      experiment = prepared.experiment;
      try {
        return await executeHeld(prepared, context);
      } finally {
        catalog.release(prepared.model);
      }
    } catch (error) {
      outcome = codeName(NexusError.from(error).code);
      throw error;
    } finally {
      catalog.requestAnswered();
      const latencyMs = performance.now() - started;
      metrics.inferRequests.inc({ model, outcome });
      metrics.inferLatency.observe({ model }, latencyMs / 1000);
      if (version > 0) experiment?.recordRequest(version, latencyMs, outcome !== 'ok');
    }
  }

  return { prepare, execute, infer };
}
