/**
 * The Open Inference Protocol's generate extension, as Triton serves it for vLLM models:
 *
 *   POST /v2/models/{m}[/versions/{v}]/generate          {"text_input": "...", "parameters": {...}} → one JSON answer
 *   POST /v2/models/{m}[/versions/{v}]/generate_stream   the same, answered as server-sent events, one per chunk of text
 *
 * The body becomes the ModelInfer request of Triton's vLLM convention (text_input, stream,
 * sampling_parameters, exclude_input_in_output), as Triton's own generate endpoint does, and goes
 * down the same dispatch as ModelInfer: parameters that are sampling settings (temperature,
 * top_p, top_k, max_tokens, seed, stop, repetition_penalty, frequency_penalty, presence_penalty,
 * ignore_eos) become sampling_parameters; the others (priority, timeout, an A/B split's sticky
 * parameter) stay request parameters. Each answer: {"model_name", "model_version", "text_output"},
 * the last with "parameters" saying how the generation finished.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { codeName, invalidArgument, NexusError } from '../../domain/index.ts';
import type { InferParameter, ModelInferRequest, ModelInferResponse } from '../../protocol/generated/inference/grpc_service.ts';
import { cancellationOf } from './http-edge.ts';
import type { RouteContext } from './route-context.ts';
import { bytesElements, jsonOfParameter, parameterOf, splitBytesElements } from './kserve-json.ts';
import { MODEL_INFER } from './oip-routes.ts';
import { EventStream } from './sse.ts';

/** Parameters that are sampling settings of Triton's vLLM convention. */
const SAMPLING_KEYS = new Set([
  'temperature', 'top_p', 'top_k', 'max_tokens', 'seed', 'stop', 'repetition_penalty', 'frequency_penalty', 'presence_penalty', 'ignore_eos',
]);
/** Parameters that are inputs of the convention rather than settings. */
const INPUT_KEYS = new Set(['stream', 'exclude_input_in_output']);
const BODY_KEYS = new Set(['id', 'text_input', 'parameters', 'stream', 'exclude_input_in_output']);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const encoder = new TextEncoder();
const utf8 = new TextDecoder('utf-8');

const oneElement = (name: string, datatype: 'BYTES' | 'BOOL') => ({ name, datatype, shape: [1], parameters: {}, contents: undefined });

/** The ModelInfer request of Triton's vLLM convention for a generate body. Throws INVALID_ARGUMENT naming the field. Pure. */
export function tritonRequestOfGenerate(modelName: string, modelVersion: string, body: unknown, stream: boolean): ModelInferRequest {
  if (!isObject(body)) throw invalidArgument('the request body must be a JSON object with "text_input"');
  const unknown = Object.keys(body).find((key) => !BODY_KEYS.has(key));
  if (unknown !== undefined) throw invalidArgument(`${unknown.slice(0, 64)} is not a field of a generate request; send text_input and parameters`);
  if (typeof body.text_input !== 'string') throw invalidArgument('text_input must be a string');
  if (body.id !== undefined && typeof body.id !== 'string') throw invalidArgument('id must be a string');
  if (body.parameters !== undefined && !isObject(body.parameters)) throw invalidArgument('parameters must be an object');
  const given: Record<string, unknown> = { ...(body.parameters as Record<string, unknown> | undefined), ...(body.stream === undefined ? {} : { stream: body.stream }) };
  if (body.exclude_input_in_output !== undefined) given.exclude_input_in_output = body.exclude_input_in_output;
  const sampling: Record<string, unknown> = {};
  const parameters: Record<string, InferParameter> = {};
  let excludeInput = false;
  for (const [key, value] of Object.entries(given)) {
    if (key === '__proto__') throw invalidArgument('parameters has a "__proto__" key');
    if (SAMPLING_KEYS.has(key)) sampling[key] = value;
    else if (INPUT_KEYS.has(key)) {
      if (typeof value !== 'boolean') throw invalidArgument(`parameters.${key} must be true or false`);
      if (key === 'stream' && value !== stream) throw invalidArgument(`parameters.stream is ${value}; call ${value ? 'generate_stream' : 'generate'} for that`);
      if (key === 'exclude_input_in_output') excludeInput = value;
    } else parameters[key] = parameterOf(`parameters.${key}`, value);
  }
  return {
    modelName, modelVersion, id: (body.id as string | undefined) ?? '', parameters,
    inputs: [oneElement('text_input', 'BYTES'), oneElement('stream', 'BOOL'), oneElement('sampling_parameters', 'BYTES'), oneElement('exclude_input_in_output', 'BOOL')],
    outputs: [],
    rawInputContents: [
      bytesElements([encoder.encode(body.text_input)]), Uint8Array.of(stream ? 1 : 0),
      bytesElements([encoder.encode(JSON.stringify(sampling))]), Uint8Array.of(excludeInput ? 1 : 0),
    ],
  };
}

/** One answer of the generate extension from a response of the convention. Pure. */
export function generateAnswerOf(response: ModelInferResponse): Record<string, unknown> {
  const index = response.outputs.findIndex((output) => output.name === 'text_output');
  const raw = response.rawOutputContents[index];
  const text = index >= 0 && raw ? splitBytesElements(raw).map((element) => utf8.decode(element)).join('') : '';
  const answer: Record<string, unknown> = { model_name: response.modelName, model_version: response.modelVersion };
  if (response.id !== '') answer.id = response.id;
  answer.text_output = text;
  const parameters = Object.entries(response.parameters).filter(([key]) => key !== 'triton_final_response');
  if (parameters.length > 0) answer.parameters = Object.fromEntries(parameters.map(([key, value]) => [key, jsonOfParameter(value)]));
  return answer;
}

export function registerGenerateRoutes({ app, edge, parts }: RouteContext): void {
  const { requests, limiter } = parts;

  const generate = (stream: boolean) => async (request: FastifyRequest, reply: FastifyReply) => {
    const { model: name, version = '' } = request.params as { model: string; version?: string };
    const principal = await edge.admit(request, MODEL_INFER, name);
    const inferRequest = tritonRequestOfGenerate(name, version, request.body, stream);
    const context = { callDeadlineMs: undefined, signal: cancellationOf(reply) };
    const tensor = () => limiter.within(principal, 1, requests.handle, inferRequest, context);
    const events = new EventStream(reply);
    const answers: ModelInferResponse[] = [];
    const send = (response: ModelInferResponse) => {
      if (stream) events.send(generateAnswerOf(response));
      else answers.push(response);
    };
    const dispatch = parts.generation?.triton;
    try {
      await edge.within(request, async () => {
        // Without a generation path every request is a tensor request: the model's signature refuses text_input.
        if (!dispatch) send(await tensor());
        else await dispatch.answer(inferRequest, { ...context, admitTokens: (tokens) => limiter.admit(principal, tokens) }, stream ? 'stream' : 'unary', send, tensor);
      });
    } catch (error) {
      if (!events.started) throw error;
      const coded = NexusError.from(error);
      edge.failed(request, coded, error);
      events.send({ error: `${codeName(coded.code)}: ${coded.message}` });
    }
    if (stream) {
      // A dispatch always sends a last response; should none have come, the stream still opens and ends.
      if (!events.started) events.send({ model_name: name, model_version: version, text_output: '' });
      events.end();
      return reply;
    }
    return reply.send(generateAnswerOf(answers.at(-1)!));
  };
  for (const suffix of ['generate', 'generate_stream']) {
    const handler = generate(suffix === 'generate_stream');
    app.post(`/v2/models/:model/${suffix}`, handler);
    app.post(`/v2/models/:model/versions/:version/${suffix}`, handler);
  }
}
