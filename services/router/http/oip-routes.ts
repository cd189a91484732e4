/**
 * The Open Inference Protocol's REST API (KServe v2, as Triton serves it on port 8000):
 *
 *   GET  /v2/health/live, /v2/health/ready                     open, 200 or 503
 *   GET  /v2                                                   server metadata (ServerMetadata)
 *   GET  /v2/models/{m}[/versions/{v}]                         model metadata (ModelMetadata)
 *   GET  /v2/models/{m}[/versions/{v}]/ready                   200 or 503 (ModelReady)
 *   POST /v2/models/{m}[/versions/{v}]/infer                   JSON tensors or the binary extension (ModelInfer)
 *
 * Each answers as the gRPC method in brackets does, under its access-table entry and the
 * caller's rate limits; `{v}` is anything ModelInfer's model_version takes (a number, an alias,
 * `latest`). A text-generation model on /infer follows Triton's vLLM convention, as on gRPC.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { ErrorCode, formatSplit, NexusError } from '../../domain/index.ts';
import type { ModelInferResponse } from '../../protocol/generated/inference/grpc_service.ts';
import { INFERENCE_ACCESS } from '../grpc/index.ts';
import { SERVER_NAME, SERVER_VERSION } from '../grpc/inference-service.ts';
import { cancellationOf, type MirroredMethod } from './http-edge.ts';
import { binaryBodyOf, type RouteContext } from './route-context.ts';
import { inferRequestOfJson, jsonOfInferResponse } from './kserve-json.ts';

const method = (label: string, key: keyof typeof INFERENCE_ACCESS): MirroredMethod => ({ label, access: INFERENCE_ACCESS[key] });
const SERVER_METADATA = method('ServerMetadata', 'serverMetadata');
const MODEL_METADATA = method('ModelMetadata', 'modelMetadata');
const MODEL_READY = method('ModelReady', 'modelReady');
export const MODEL_INFER = method('ModelInfer', 'modelInfer');

/** The extensions this port speaks, as GET /v2 lists them. */
const EXTENSIONS = ['binary_tensor_data', 'generate', 'parameters', 'model_repository_readonly'];

type ModelParams = { model: string; version?: string };

/** Both spellings of a per-model route: the model's default version, and an explicit one. */
const bothForms = (suffix: string) => [`/v2/models/:model${suffix}`, `/v2/models/:model/versions/:version${suffix}`];

/** Sends a KServe JSON answer, or the JSON header and the binary data after it. */
export function sendInferResponse(reply: FastifyReply, response: ModelInferResponse, binaryOutput: (name: string) => boolean): FastifyReply {
  const { header, binary } = jsonOfInferResponse(response, binaryOutput);
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (binary.length === 0) return reply.type('application/json').send(json);
  return reply.type('application/octet-stream').header('inference-header-content-length', String(json.byteLength))
    .send(Buffer.concat([json, ...binary]));
}

export function registerOipRoutes({ app, edge, parts }: RouteContext): void {
  const { catalog, requests, limiter } = parts;

  app.get('/v2/health/live', async (_request, reply) => reply.send({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) => {
    const ready = parts.isServerReady();
    return reply.code(ready ? 200 : 503).send({ ready });
  });

  app.get('/v2', async (request, reply) => {
    await edge.admit(request, SERVER_METADATA);
    return reply.send({ name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS });
  });

  const metadata = async (request: FastifyRequest, reply: FastifyReply) => {
    const { model: name, version = '' } = request.params as ModelParams;
    await edge.admit(request, MODEL_METADATA, name);
    return edge.within(request, async () => {
      const described = await catalog.describe(name, version);
      const model = described.models[0];
      const versions = await catalog.listVersions(name);
      const { version: record, signature } = model;
      const tensor = ({ name: tensorName, datatype, shape }: { name: string; datatype: string; shape: number[] }) => ({ name: tensorName, datatype, shape: shape.map(Number) });
      return reply.send({
        name: record.modelName,
        versions: versions.map(String),
        platform: record.format === 'onnx' ? 'onnx' : record.format,
        inputs: signature.inputs.map(tensor),
        outputs: signature.outputs.map(tensor),
        properties: {
          version: String(record.version),
          sha256: record.sha256,
          max_batch_size: String(model.policy.maxBatchSize),
          ...(record.lineage?.commit ? { git_commit: record.lineage.commit } : {}),
          ...(described.alias ? { alias: described.alias } : {}),
          ...(described.split ? { split: formatSplit(described.split.arms) } : {}),
          ...(described.split?.stickyParameter ? { sticky_parameter: described.split.stickyParameter } : {}),
        },
      });
    });
  };
  for (const path of bothForms('')) app.get(path, metadata);

  // Ready when every version the name and version route to now is loaded, as ModelReady.
  const ready = async (request: FastifyRequest, reply: FastifyReply) => {
    const { model: name, version = '' } = request.params as ModelParams;
    await edge.admit(request, MODEL_READY, name);
    const isReady = await edge.within(request, async () => {
      try {
        const { models } = await catalog.describe(name, version);
        return models.every((model) => catalog.isLoaded(model));
      } catch (error) {
        if (NexusError.from(error).code === ErrorCode.NOT_FOUND) return false;
        throw error;
      }
    });
    return reply.code(isReady ? 200 : 503).send({ name, ...(version ? { version } : {}), ready: isReady });
  };
  for (const path of bothForms('/ready')) app.get(path, ready);

  const infer = async (request: FastifyRequest, reply: FastifyReply) => {
    const { model: name, version = '' } = request.params as ModelParams;
    const principal = await edge.admit(request, MODEL_INFER, name);
    const { json, binary } = binaryBodyOf(request);
    const parsed = inferRequestOfJson(name, version, json, binary);
    const context = { callDeadlineMs: undefined, signal: cancellationOf(reply) };
    const inferRequest = parsed.request;
    const response = await edge.within(request, async () => {
      const tensor = () => limiter.within(principal, inferRequest.inputs[0]?.shape[0], requests.handle, inferRequest, context);
      const dispatch = parts.generation?.triton;
      if (!dispatch || dispatch.tensorNow(inferRequest)) return tensor();
      // A text-generation model counts its prompt and max_tokens as rows (tokens), as on gRPC.
      let answer: ModelInferResponse | undefined;
      await dispatch.answer(inferRequest, { ...context, admitTokens: (tokens) => limiter.admit(principal, tokens) }, 'unary',
        (generated) => { answer = generated; }, tensor);
      return answer!;
    });
    return sendInferResponse(reply, response, parsed.binaryOutput);
  };
  for (const path of bothForms('/infer')) app.post(path, infer);
}
