/**
 * The Open Inference Protocol's REST tensors (KServe v2 JSON, with Triton's binary tensor
 * extension) to and from the protocol's ModelInferRequest and ModelInferResponse, so an HTTP
 * request goes down the same request path as a gRPC one. Pure: every refusal is a NexusError
 * naming the input, the field and what was expected.
 *
 *   request  {"id", "parameters", "inputs": [{"name", "shape", "datatype", "parameters", "data"}], "outputs": [{"name", "parameters"}]}
 *            An output's other parameters pass on as they are (Triton's classification: K, answered as
 *            BYTES "score:index:label" strings by the request path).
 *   binary   an input with parameters.binary_data_size takes that many bytes from the body after
 *            the JSON header (whose length the Inference-Header-Content-Length header gives), in
 *            the order of the inputs; an output with parameters.binary_data (or every output, with
 *            the request's parameters.binary_data_output) is answered that way.
 *
 * Every input becomes raw contents (dense little-endian bytes; BYTES elements each a 4-byte
 * little-endian length and their bytes, as Triton lays them out), so the request is validated
 * against the model's signature by the one validation of every request, and answered in raw
 * outputs that are turned back into JSON values or binary data here.
 */
import type {
  InferParameter, ModelInferRequest, ModelInferResponse, ModelInferRequest_InferInputTensor,
} from '../../protocol/generated/inference/grpc_service.ts';
import { bytesOf, isDatatype, viewAs, type Datatype } from '../../onnx/index.ts';
import { ErrorCode, invalidArgument, NexusError } from '../../domain/index.ts';

/** What the request asked of its answer: which outputs come as binary data. */
export interface ParsedInfer {
  request: ModelInferRequest;
  /** Whether output `name` is answered as binary data rather than JSON values. */
  binaryOutput(name: string): boolean;
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A JSON parameter value as the protocol's InferParameter. Throws INVALID_ARGUMENT naming `field`. */
export function parameterOf(field: string, value: unknown): InferParameter {
  if (typeof value === 'boolean') return { boolParam: value };
  if (typeof value === 'string') return { stringParam: value };
  if (typeof value === 'number' && Number.isFinite(value)) {
    if (!Number.isInteger(value)) return { doubleParam: value };
    if (!Number.isSafeInteger(value)) throw invalidArgument(`${field} is ${value}, beyond the integers JSON carries exactly (±(2^53 - 1))`);
    return { int64Param: value };
  }
  throw invalidArgument(`${field} must be a boolean, a number or a string`);
}

/** The request's `parameters`, less the extension's own keys, as InferParameters. */
function parametersOf(field: string, given: unknown, drop: readonly string[] = []): Record<string, InferParameter> {
  if (given === undefined || given === null) return {};
  if (!isObject(given)) throw invalidArgument(`${field} must be an object`);
  const parameters: Record<string, InferParameter> = {};
  for (const [key, value] of Object.entries(given)) {
    if (drop.includes(key)) continue;
    parameters[key] = parameterOf(`${field}.${key}`, value);
  }
  return parameters;
}

/** Elements of a shape; throws INVALID_ARGUMENT unless every dimension is a non-negative safe integer. */
function elementsOf(field: string, shape: unknown): { shape: number[]; count: number } {
  if (!Array.isArray(shape) || shape.some((dim) => !Number.isSafeInteger(dim) || dim < 0)) {
    throw invalidArgument(`${field} must be a list of non-negative integers`);
  }
  const count = shape.reduce((product: number, dim: number) => product * dim, 1);
  if (!Number.isSafeInteger(count)) throw invalidArgument(`${field} [${shape}] has more elements than can be counted`);
  return { shape: shape as number[], count };
}

/** Nested lists flattened in row-major order (KServe allows either form). */
function flatten(data: unknown[]): unknown[] {
  return data.some(Array.isArray) ? data.flat(Infinity) : data;
}

const INTEGER_RANGES: Partial<Record<Datatype, readonly [number, number]>> = {
  INT8: [-128, 127], UINT8: [0, 255], INT16: [-32768, 32767], UINT16: [0, 65535],
  INT32: [-2147483648, 2147483647], UINT32: [0, 4294967295],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER], UINT64: [0, Number.MAX_SAFE_INTEGER],
};

const encoder = new TextEncoder();

/** BYTES elements as Triton lays them out: each a 4-byte little-endian length, then its bytes. */
export function bytesElements(values: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(values.reduce((sum, value) => sum + 4 + value.byteLength, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const value of values) {
    view.setUint32(offset, value.byteLength, true);
    out.set(value, offset + 4);
    offset += 4 + value.byteLength;
  }
  return out;
}

/** The elements of raw BYTES contents; throws DATA_LOSS when the lengths do not add up. */
export function splitBytesElements(raw: Uint8Array): Uint8Array[] {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const elements: Uint8Array[] = [];
  for (let offset = 0; offset < raw.byteLength;) {
    const length = offset + 4 <= raw.byteLength ? view.getUint32(offset, true) : -1;
    if (length < 0 || offset + 4 + length > raw.byteLength) throw new NexusError(ErrorCode.DATA_LOSS, 'a BYTES output\'s element lengths do not add up to its bytes');
    elements.push(raw.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return elements;
}

/** JSON values of one input as raw contents. Throws INVALID_ARGUMENT naming the input and the index. */
function jsonDataToBytes(name: string, datatype: Datatype, values: unknown[]): Uint8Array {
  const wrong = (index: number, expected: string) =>
    invalidArgument(`input '${name}': data[${index}] is ${JSON.stringify(values[index])?.slice(0, 40)}; ${datatype} takes ${expected}`);
  switch (datatype) {
    case 'BOOL':
      return Uint8Array.from(values, (value, index) => {
        if (typeof value !== 'boolean') throw wrong(index, 'true or false');
        return value ? 1 : 0;
      });
    case 'BYTES':
      return bytesElements(values.map((value, index) => {
        if (typeof value !== 'string') throw wrong(index, 'strings');
        return encoder.encode(value);
      }));
    case 'FP32': case 'FP64': {
      values.forEach((value, index) => {
        if (typeof value !== 'number') throw wrong(index, 'numbers');
      });
      return bytesOf(datatype === 'FP32' ? Float32Array.from(values as number[]) : Float64Array.from(values as number[]));
    }
    case 'FP16': case 'BF16':
      throw invalidArgument(`input '${name}' is ${datatype}, which JSON tensors do not carry; send it as binary data (parameters.binary_data_size)`);
    default: {
      const [low, high] = INTEGER_RANGES[datatype]!;
      values.forEach((value, index) => {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < low || value > high) {
          throw wrong(index, `integers in [${low}, ${high}]${datatype.endsWith('64') ? ' (beyond ±(2^53 - 1), send binary data)' : ''}`);
        }
      });
      const numbers = values as number[];
      switch (datatype) {
        case 'INT8': return bytesOf(Int8Array.from(numbers));
        case 'UINT8': return Uint8Array.from(numbers);
        case 'INT16': return bytesOf(Int16Array.from(numbers));
        case 'UINT16': return bytesOf(Uint16Array.from(numbers));
        case 'INT32': return bytesOf(Int32Array.from(numbers));
        case 'UINT32': return bytesOf(Uint32Array.from(numbers));
        case 'INT64': return bytesOf(BigInt64Array.from(numbers, BigInt));
        default: return bytesOf(BigUint64Array.from(numbers, BigInt));
      }
    }
  }
}

/** Reads one input: its descriptor and its raw bytes, from `data` or from the binary tail at `offset`. */
function inputOf(given: unknown, index: number, binary: Uint8Array, offset: number): { tensor: ModelInferRequest_InferInputTensor; bytes: Uint8Array; used: number } {
  const field = `inputs[${index}]`;
  if (!isObject(given)) throw invalidArgument(`${field} must be an object with name, shape, datatype and data`);
  const { name, datatype } = given;
  if (typeof name !== 'string' || name === '') throw invalidArgument(`${field}.name must be a non-empty string`);
  if (typeof datatype !== 'string' || !isDatatype(datatype)) throw invalidArgument(`input '${name}': datatype ${JSON.stringify(datatype)} is not one of the protocol's (FP32, INT64, BYTES, ...)`);
  const { shape, count } = elementsOf(`input '${name}': shape`, given.shape);
  const binarySize = isObject(given.parameters) ? given.parameters.binary_data_size : undefined;
  const parameters = parametersOf(`input '${name}': parameters`, given.parameters, ['binary_data_size']);
  const tensor = { name, datatype, shape, parameters, contents: undefined };
  if (binarySize !== undefined) {
    if (!Number.isSafeInteger(binarySize) || (binarySize as number) < 0) throw invalidArgument(`input '${name}': parameters.binary_data_size must be a non-negative integer`);
    if (given.data !== undefined) throw invalidArgument(`input '${name}' has both data and parameters.binary_data_size; send one`);
    const size = binarySize as number;
    if (offset + size > binary.byteLength) {
      throw invalidArgument(`input '${name}': parameters.binary_data_size is ${size}, but only ${binary.byteLength - offset} bytes of binary data are left after the JSON header`);
    }
    return { tensor, bytes: binary.subarray(offset, offset + size), used: size };
  }
  if (!Array.isArray(given.data)) throw invalidArgument(`input '${name}' has no data (a list of values) and no parameters.binary_data_size`);
  const values = flatten(given.data);
  if (values.length !== count) throw invalidArgument(`input '${name}': data has ${values.length} values, its shape [${shape}] needs ${count}`);
  return { tensor, bytes: jsonDataToBytes(name, datatype, values), used: 0 };
}

/**
 * The request `body` (parsed JSON) for `modelName` at `modelVersion` ('' for the default), with
 * `binary` the bytes after the JSON header (empty without the binary extension).
 */
export function inferRequestOfJson(modelName: string, modelVersion: string, body: unknown, binary: Uint8Array = new Uint8Array(0)): ParsedInfer {
  if (!isObject(body)) throw invalidArgument('the request body must be a JSON object with "inputs"');
  if (body.id !== undefined && typeof body.id !== 'string') throw invalidArgument('id must be a string');
  if (!Array.isArray(body.inputs)) throw invalidArgument('inputs must be a list of tensors');
  const rawInputContents: Uint8Array[] = [];
  const inputs: ModelInferRequest_InferInputTensor[] = [];
  let offset = 0;
  body.inputs.forEach((given, index) => {
    const { tensor, bytes, used } = inputOf(given, index, binary, offset);
    inputs.push(tensor);
    rawInputContents.push(bytes);
    offset += used;
  });
  if (offset !== binary.byteLength) {
    throw invalidArgument(`the body holds ${binary.byteLength} bytes of binary data after the JSON header, but the inputs' binary_data_size add up to ${offset}`);
  }
  const allBinary = isObject(body.parameters) && body.parameters.binary_data_output === true;
  const binaryNames = new Set<string>();
  if (body.outputs !== undefined && !Array.isArray(body.outputs)) throw invalidArgument('outputs must be a list of {"name": ...}');
  const outputs = (body.outputs as unknown[] | undefined ?? []).map((given, index) => {
    if (!isObject(given) || typeof given.name !== 'string') throw invalidArgument(`outputs[${index}] must be an object with a name`);
    const wanted = isObject(given.parameters) ? given.parameters : {};
    if (wanted.binary_data === true) binaryNames.add(given.name);
    return { name: given.name, parameters: parametersOf(`output '${given.name}': parameters`, given.parameters, ['binary_data']) };
  });
  return {
    request: {
      modelName, modelVersion, id: (body.id as string | undefined) ?? '',
      parameters: parametersOf('parameters', body.parameters, ['binary_data_output']),
      inputs, outputs, rawInputContents,
    },
    binaryOutput: (name) => allBinary || binaryNames.has(name),
  };
}

/** An InferParameter as a JSON value. */
export function jsonOfParameter(parameter: InferParameter): boolean | number | string | null {
  return parameter.boolParam ?? parameter.int64Param ?? parameter.uint64Param ?? parameter.doubleParam ?? parameter.stringParam ?? null;
}

const utf8 = new TextDecoder('utf-8');
/** JSON.rawJSON (V8, Node 22+; not yet in TypeScript's lib): a JSON number written as given, so 64-bit integers stay exact. */
const rawJson = (JSON as unknown as { rawJSON(text: string): unknown }).rawJSON;

/** The JSON values of one output's raw bytes (64-bit integers past 2^53 as exact JSON numbers). */
function jsonValuesOf(name: string, datatype: string, raw: Uint8Array): unknown[] {
  if (datatype === 'BYTES') return splitBytesElements(raw).map((element) => utf8.decode(element));
  if (!isDatatype(datatype)) throw new NexusError(ErrorCode.INTERNAL, `output '${name}' has an unknown datatype ${datatype}`);
  if (datatype === 'FP16' || datatype === 'BF16') {
    throw new NexusError(ErrorCode.FAILED_PRECONDITION,
      `output '${name}' is ${datatype}, which JSON tensors do not carry; ask for it as binary data (outputs: [{"name": "${name}", "parameters": {"binary_data": true}}])`);
  }
  const values = viewAs(datatype, raw);
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) {
    return Array.from(values, (value) => (value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : rawJson(String(value))));
  }
  if (datatype === 'BOOL') return Array.from(values as Uint8Array, (value) => value !== 0);
  return Array.from(values as ArrayLike<number>);
}

/** A response as the JSON header and the binary data that follows it (empty when every output is JSON). */
export interface JsonInferResponse {
  header: Record<string, unknown>;
  binary: Uint8Array[];
}

/** The answer to `parsed` from the request path's raw-output `response`. Throws FAILED_PRECONDITION for FP16/BF16 asked as JSON. */
export function jsonOfInferResponse(response: ModelInferResponse, binaryOutput: (name: string) => boolean): JsonInferResponse {
  const binary: Uint8Array[] = [];
  const outputs = response.outputs.map((output, index) => {
    const raw = response.rawOutputContents[index];
    if (!raw) throw new NexusError(ErrorCode.INTERNAL, `output '${output.name}' came back without raw contents`);
    const parameters = Object.fromEntries(Object.entries(output.parameters).map(([key, value]) => [key, jsonOfParameter(value)]));
    const described = { name: output.name, datatype: output.datatype, shape: output.shape.map(Number) };
    if (binaryOutput(output.name)) {
      binary.push(raw);
      return { ...described, parameters: { ...parameters, binary_data_size: raw.byteLength } };
    }
    const data = jsonValuesOf(output.name, output.datatype, raw);
    return Object.keys(parameters).length > 0 ? { ...described, parameters, data } : { ...described, data };
  });
  const header: Record<string, unknown> = { model_name: response.modelName, model_version: response.modelVersion };
  if (response.id !== '') header.id = response.id;
  const parameters = Object.entries(response.parameters);
  if (parameters.length > 0) header.parameters = Object.fromEntries(parameters.map(([key, value]) => [key, jsonOfParameter(value)]));
  header.outputs = outputs;
  return { header, binary };
}
