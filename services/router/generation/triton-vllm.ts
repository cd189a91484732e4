/**
 * Text generation over the Open Inference Protocol, with the conventions of Triton's vLLM backend,
 * so tritonclient and genai-perf work unchanged:
 *
 *   inputs   text_input BYTES (the prompt), stream BOOL (optional), sampling_parameters BYTES (a
 *            JSON object: temperature, top_p, top_k, max_tokens, seed, stop, repetition_penalty,
 *            frequency_penalty, presence_penalty, ignore_eos), exclude_input_in_output BOOL
 *   outputs  text_output BYTES [1], in raw_output_contents (4-byte little-endian length, bytes)
 *
 * On ModelStreamInfer with stream true, one response per chunk of text, the last one flagged
 * final (parameter triton_final_response: true, false on the others: Triton's decoupled
 * convention); without stream, and on ModelInfer, one response with the whole text. The first
 * response starts with the prompt unless exclude_input_in_output is true (vLLM's default). Each
 * value may come as typed contents or in raw_input_contents (as tritonclient sends them). The last
 * response's parameters also say how the generation went: nexus_finish_reason,
 * nexus_prompt_tokens, nexus_generated_tokens, nexus_time_to_first_token_us.
 */
import type { InferParameter, ModelInferRequest, ModelInferResponse } from '../../protocol/generated/inference/grpc_service.ts';
import { invalidArgument } from '../../domain/index.ts';
import { schedulingOf } from '../admission/index.ts';
import type { GenerationChunk, GenerationContext, GenerationPath, GenerationStart } from './generation-path.ts';
import { settingsOfTritonJson, TRITON_DEFAULT_MAX_TOKENS } from './sampling.ts';
import type { ModelCatalog } from '../models/index.ts';
import { isTextGenerationVersion, TEXT_INPUT, TEXT_OUTPUT } from './text-generation-model.ts';

const INPUTS: Record<string, 'BYTES' | 'BOOL'> = {
  [TEXT_INPUT]: 'BYTES', stream: 'BOOL', sampling_parameters: 'BYTES', exclude_input_in_output: 'BOOL',
};

interface TritonGeneration {
  prompt: string;
  stream: boolean;
  excludeInput: boolean;
  samplingJson: string;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The one element of a BYTES tensor in raw contents: a 4-byte little-endian length, then the bytes. */
function rawBytesElement(name: string, raw: Uint8Array): Uint8Array {
  if (raw.byteLength < 4) throw invalidArgument(`raw contents of input '${name}' are ${raw.byteLength} bytes; a BYTES element starts with a 4-byte length`);
  const length = new DataView(raw.buffer, raw.byteOffset, raw.byteLength).getUint32(0, true);
  if (raw.byteLength !== 4 + length) throw invalidArgument(`raw contents of input '${name}' hold ${raw.byteLength} bytes, but its element's length says ${length} + 4`);
  return raw.subarray(4);
}

/** Reads the inputs of Triton's vLLM convention. Throws INVALID_ARGUMENT naming the input. Pure. */
export function tritonGenerationOf(request: ModelInferRequest): TritonGeneration {
  const raw = request.rawInputContents.length > 0;
  if (raw && request.rawInputContents.length !== request.inputs.length) {
    throw invalidArgument(`raw_input_contents has ${request.rawInputContents.length} entries but there are ${request.inputs.length} inputs; send one per input, in order`);
  }
  const values = new Map<string, Uint8Array | boolean>();
  request.inputs.forEach((input, index) => {
    const datatype = INPUTS[input.name];
    if (!Object.hasOwn(INPUTS, input.name)) throw invalidArgument(`unexpected input '${input.name}'; the model takes: ${Object.keys(INPUTS).join(', ')}`);
    if (values.has(input.name)) throw invalidArgument(`input '${input.name}' appears twice`);
    if (input.datatype !== datatype) throw invalidArgument(`input '${input.name}' must be ${datatype}, got ${input.datatype}`);
    if (input.shape.reduce((product, dim) => product * dim, 1) !== 1 || input.shape.some((dim) => dim !== 1)) {
      throw invalidArgument(`input '${input.name}' has shape [${input.shape}]; it takes one element ([1])`);
    }
    if (raw) {
      const data = request.rawInputContents[index];
      if (datatype === 'BOOL') {
        if (data.byteLength !== 1) throw invalidArgument(`raw_input_contents[${index}] for input '${input.name}' has ${data.byteLength} bytes; one BOOL is 1`);
        values.set(input.name, data[0] !== 0);
      } else {
        values.set(input.name, rawBytesElement(input.name, data));
      }
    } else if (datatype === 'BOOL') {
      const given = input.contents?.boolContents ?? [];
      if (given.length !== 1) throw invalidArgument(`input '${input.name}': contents.bool_contents has ${given.length} values, its shape needs 1`);
      values.set(input.name, given[0]);
    } else {
      const given = input.contents?.bytesContents ?? [];
      if (given.length !== 1) throw invalidArgument(`input '${input.name}': contents.bytes_contents has ${given.length} values, its shape needs 1`);
      values.set(input.name, given[0]);
    }
  });
  const text = (name: string) => {
    const value = values.get(name);
    if (value === undefined) return undefined;
    try {
      return utf8.decode(value as Uint8Array);
    } catch {
      throw invalidArgument(`input '${name}' is not valid UTF-8`);
    }
  };
  const prompt = text(TEXT_INPUT);
  if (prompt === undefined) throw invalidArgument(`missing input '${TEXT_INPUT}' (BYTES [1]): the prompt`);
  for (const output of request.outputs) {
    if (output.name !== TEXT_OUTPUT) throw invalidArgument(`requested output '${output.name}' does not exist; the model's outputs: ${TEXT_OUTPUT}`);
  }
  return {
    prompt,
    stream: (values.get('stream') as boolean | undefined) ?? false,
    excludeInput: (values.get('exclude_input_in_output') as boolean | undefined) ?? false,
    samplingJson: text('sampling_parameters') ?? '',
  };
}

/** A BYTES element as raw contents: its length (4 bytes, little-endian), then its UTF-8 bytes. Pure. */
export function rawBytesOf(text: string): Uint8Array {
  const bytes = Buffer.from(text, 'utf8');
  const raw = new Uint8Array(4 + bytes.byteLength);
  new DataView(raw.buffer).setUint32(0, bytes.byteLength, true);
  raw.set(bytes, 4);
  return raw;
}

function responseOf(request: ModelInferRequest, start: GenerationStart, text: string, final: boolean, parameters: Record<string, InferParameter> = {}): ModelInferResponse {
  return {
    modelName: start.modelName,
    modelVersion: String(start.version),
    id: request.id,
    parameters: { triton_final_response: { boolParam: final }, ...parameters },
    outputs: [{ name: TEXT_OUTPUT, datatype: 'BYTES', shape: [1], parameters: {}, contents: undefined }],
    rawOutputContents: [rawBytesOf(text)],
  };
}

function finishParameters(chunk: GenerationChunk): Record<string, InferParameter> {
  const finish = chunk.finish!;
  return {
    nexus_finish_reason: { stringParam: finish.reason },
    nexus_prompt_tokens: { int64Param: finish.promptTokens },
    nexus_generated_tokens: { int64Param: finish.generatedTokens },
    nexus_time_to_first_token_us: { int64Param: Math.round(finish.timeToFirstTokenMs * 1000) },
  };
}

/**
 * Answers one ModelInfer (`call` 'unary') or ModelStreamInfer message for a text-generation model
 * through `send`: once, or once per chunk when the request streams. Rejects with a coded error.
 */
export async function answerTritonGeneration(
  path: GenerationPath, request: ModelInferRequest, context: GenerationContext, call: 'unary' | 'stream', send: (response: ModelInferResponse) => void,
): Promise<void> {
  const triton = tritonGenerationOf(request);
  if (triton.stream && call === 'unary') throw invalidArgument('input \'stream\' is true, but ModelInfer answers once; use ModelStreamInfer to stream');
  const settings = settingsOfTritonJson(triton.samplingJson);
  // 0: the model's own default priority.
  const { priority, deadlineMs } = schedulingOf(request.parameters, { defaultPriority: 0, callDeadlineMs: undefined, nowMs: Date.now() });
  let start: GenerationStart | undefined;
  let prefix = triton.excludeInput ? '' : triton.prompt;
  let whole = '';
  await path.generate({
    modelName: request.modelName, modelVersion: request.modelVersion, parameters: request.parameters,
    prompt: { kind: 'text', text: triton.prompt }, settings, defaultMaxNewTokens: TRITON_DEFAULT_MAX_TOKENS,
    maxTokensField: 'sampling_parameters.max_tokens', priority: priority === 0 ? undefined : priority, deadlineMs,
  }, { ...context, onStart: (started) => { start = started; } }, (chunk) => {
    if (!triton.stream) {
      whole += chunk.text;
      if (chunk.finish) send(responseOf(request, start!, prefix + whole, true, finishParameters(chunk)));
      return;
    }
    if (chunk.text === '' && !chunk.finish) return;
    send(responseOf(request, start!, prefix + chunk.text, chunk.finish !== undefined, chunk.finish ? finishParameters(chunk) : {}));
    prefix = '';
  });
}

/** How ModelInfer and ModelStreamInfer tell text-generation models from tensor models. */
export interface TritonDispatch {
  /** True when the request goes to a tensor model now, decided without waiting: every request to a served tensor model. */
  tensorNow(request: ModelInferRequest): boolean;
  /**
   * Answers through `send`: by generation when the request's model generates text, else with
   * `tensor` (the request path, which also answers a request that cannot be routed).
   */
  answer(request: ModelInferRequest, context: GenerationContext, call: 'unary' | 'stream', send: (response: ModelInferResponse) => void,
    tensor: () => Promise<ModelInferResponse>): Promise<void>;
}

/** The dispatch over the catalog's routes and the generation path. */
export function tritonDispatch(catalog: Pick<ModelCatalog, 'route' | 'routeNow'>, path: GenerationPath): TritonDispatch {
  return {
    tensorNow(request) {
      const model = catalog.routeNow(request.modelName, request.modelVersion, request.parameters);
      return model !== undefined && !isTextGenerationVersion(model.version);
    },
    async answer(request, context, call, send, tensor) {
      let generates = false;
      try {
        const routed = await catalog.route(request.modelName, request.modelVersion, request.parameters);
        generates = isTextGenerationVersion(routed.model.version);
      } catch {
        // The request path routes it again and answers the same error, counted as any other.
      }
      if (generates) await answerTritonGeneration(path, request, context, call, send);
      else send(await tensor());
    },
  };
}
