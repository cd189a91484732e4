/**
 * Checks a ModelInferRequest against the model's signature before anything is queued, and turns
 * its inputs (typed `contents` or `raw_input_contents`) into dense little-endian bytes. Pure: every
 * problem becomes an INVALID_ARGUMENT that names the tensor, the field and what was expected.
 */
import type { InferTensorContents, ModelInferRequest } from '../../protocol/generated/inference/grpc_service.ts';
import type { Int64Values, Uint64Values } from '../../protocol/int64-contents.ts';
import { BYTES_PER_ELEMENT, bytesOf, elementCount, isDatatype, type Datatype, type TypedArray } from '../../onnx/index.ts';
import type { TensorSpec } from '../../onnx/index.ts';
import { ErrorCode, invalidArgument, NexusError } from '../../domain/index.ts';

/** One input of a validated request, as dense row-major little-endian bytes. */
export interface ValidatedInput {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: Uint8Array;
}

export interface ValidatedRequest {
  /** In the order of the model's signature. */
  inputs: ValidatedInput[];
  /** Rows along dimension 0 (1 for a model without a batch dimension). */
  rows: number;
  /** Equal for requests that may be stacked into one batch. */
  shapeKey: string;
  /** The outputs to return, in the order to return them. */
  outputNames: string[];
  /** Answer in raw_output_contents (the request used raw inputs) rather than typed contents. */
  rawOutput: boolean;
  /** Bytes of its inputs, dense. */
  inputBytes: number;
  /** Bytes of every output it will get back (all outputs run, whichever are returned); 0 when a shape is not static. */
  outputBytes: number;
}

/** Byte bounds a request is checked against. */
export interface RequestByteLimits {
  /** Largest input bytes of one request (shape × datatype, summed over inputs). */
  maxRequestBytes: number;
  /** Largest message to an executor: one request's inputs must fit in it. */
  maxBatchBytes: number;
  /**
   * Largest outputs of one request: its answer is one public message, so this is at most the
   * router's message limit. Default: `maxBatchBytes`.
   */
  maxResponseBytes?: number;
}

/** The range each narrow integer type holds; typed contents outside it are refused, not wrapped. */
const INTEGER_RANGES = new Map<Datatype, readonly [number, number]>([
  ['INT8', [-128, 127]], ['UINT8', [0, 255]], ['INT16', [-32768, 32767]], ['UINT16', [0, 65535]],
  ['INT32', [-2147483648, 2147483647]], ['UINT32', [0, 4294967295]],
]);

/** Throws INVALID_ARGUMENT naming the first value that `datatype` cannot hold. Pure. */
export function checkIntegerRange(name: string, datatype: Datatype, values: readonly number[]): void {
  const range = INTEGER_RANGES.get(datatype);
  if (!range) return;
  const [low, high] = range;
  for (let index = 0; index < values.length; index++) {
    const value = values[index];
    if (!Number.isInteger(value) || value < low || value > high) {
      throw invalidArgument(`input '${name}': value ${value} at index ${index} is outside ${datatype}'s range [${low}, ${high}]`);
    }
  }
}

/** Bytes of `rows` rows of a tensor whose non-batch dimensions are static; undefined when one is not. */
function staticBytes(spec: TensorSpec, rows: number, batchable: boolean): number | undefined {
  if (!isDatatype(spec.datatype) || spec.datatype === 'BYTES') return undefined;
  const dims = batchable ? spec.shape.slice(1) : spec.shape;
  if (dims.some((dim) => dim < 0)) return undefined;
  return (batchable ? rows : 1) * elementCount(dims) * BYTES_PER_ELEMENT[spec.datatype];
}

/** Most bytes one element takes in typed contents: integers are varints, negative ones 10 bytes. */
const TYPED_WIRE_BYTES: Partial<Record<Datatype, number>> = {
  BOOL: 1, UINT8: 2, UINT16: 3, UINT32: 5, UINT64: 10, INT8: 10, INT16: 10, INT32: 10, INT64: 10, FP32: 4, FP64: 8,
};
/** Room left in an answer for its names, shapes, parameters and framing. */
const RESPONSE_ENVELOPE_BYTES = 64 * 1024;

/**
 * The most bytes the requested outputs take in the answer, from static shapes: raw bytes, or
 * typed contents at their worst-case wire size. Undefined when a shape is only known at run time.
 */
function responseWireBytes(signature: { outputs: readonly TensorSpec[] }, names: readonly string[], rows: number, batchable: boolean, raw: boolean): number | undefined {
  let total = 0;
  for (const spec of signature.outputs) {
    if (!names.includes(spec.name)) continue;
    const bytes = staticBytes(spec, rows, batchable);
    if (bytes === undefined) return undefined;
    const perElement = BYTES_PER_ELEMENT[spec.datatype as Datatype];
    total += raw ? bytes : (bytes / perElement) * (TYPED_WIRE_BYTES[spec.datatype as Datatype] ?? perElement);
  }
  return total;
}

const MIB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;

/** Whether the model batches along dimension 0: every input's first dimension is variable. */
export function isBatchable(inputs: readonly TensorSpec[]): boolean {
  return inputs.length > 0 && inputs.every((input) => input.shape.length > 0 && input.shape[0] === -1);
}

const CONTENTS_FIELD: Record<Datatype, keyof InferTensorContents | undefined> = {
  BOOL: 'boolContents', INT8: 'intContents', INT16: 'intContents', INT32: 'intContents',
  INT64: 'int64Contents', UINT8: 'uintContents', UINT16: 'uintContents', UINT32: 'uintContents',
  UINT64: 'uint64Contents', FP32: 'fp32Contents', FP64: 'fp64Contents', BYTES: 'bytesContents',
  FP16: undefined, BF16: undefined,
};

/** The proto field name (snake case) of a contents field, for messages. */
const protoFieldName = (field: string) => field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);

/** True for a contents field holding values: an array, or the typed array exact INT64 / UINT64 values come in. */
const holdsValues = (field: unknown) => (Array.isArray(field) || ArrayBuffer.isView(field)) && (field as ArrayLike<unknown>).length > 0;

/** INT64 contents as their typed array: the exact values as decoded, or the numbers converted. */
const exactInt64 = (values: Int64Values) => (values instanceof BigInt64Array ? values : BigInt64Array.from(values, (value) => BigInt(value)));
const exactUint64 = (values: Uint64Values) => (values instanceof BigUint64Array ? values : BigUint64Array.from(values, (value) => BigInt(value)));

function typedContentsToBytes(name: string, datatype: Datatype, contents: InferTensorContents, count: number): Uint8Array {
  const field = CONTENTS_FIELD[datatype];
  if (!field) throw invalidArgument(`input '${name}': datatype ${datatype} has no typed contents field; send it in raw_input_contents`);
  const used = (Object.keys(contents) as Array<keyof InferTensorContents>).filter((key) => key !== field && holdsValues(contents[key]));
  if (used.length > 0) {
    throw invalidArgument(`input '${name}' is ${datatype}, so its values belong in contents.${protoFieldName(field)}, not contents.${protoFieldName(used[0])}`);
  }
  const values = contents[field] as ArrayLike<unknown>;
  if (values.length !== count) {
    throw invalidArgument(`input '${name}': contents.${protoFieldName(field)} has ${values.length} values, its shape needs ${count}`);
  }
  let array: TypedArray;
  switch (datatype) {
    case 'FP32': array = Float32Array.from(contents.fp32Contents); break;
    case 'FP64': array = Float64Array.from(contents.fp64Contents); break;
    case 'INT8': checkIntegerRange(name, datatype, contents.intContents); array = Int8Array.from(contents.intContents); break;
    case 'INT16': checkIntegerRange(name, datatype, contents.intContents); array = Int16Array.from(contents.intContents); break;
    case 'INT32': checkIntegerRange(name, datatype, contents.intContents); array = Int32Array.from(contents.intContents); break;
    case 'INT64': array = exactInt64(contents.int64Contents); break;
    case 'UINT8': checkIntegerRange(name, datatype, contents.uintContents); array = Uint8Array.from(contents.uintContents); break;
    case 'UINT16': checkIntegerRange(name, datatype, contents.uintContents); array = Uint16Array.from(contents.uintContents); break;
    case 'UINT32': checkIntegerRange(name, datatype, contents.uintContents); array = Uint32Array.from(contents.uintContents); break;
    case 'UINT64': array = exactUint64(contents.uint64Contents); break;
    case 'BOOL': array = Uint8Array.from(contents.boolContents, (value) => (value ? 1 : 0)); break;
    default: throw invalidArgument(`input '${name}': datatype ${datatype} is not supported`);
  }
  return bytesOf(array);
}

function hasTypedContents(contents: InferTensorContents | undefined): boolean {
  return !!contents && Object.values(contents).some(holdsValues);
}

/**
 * Validates `request` against `signature`. `maxBatchSize` bounds the rows of one request; `limits`
 * its bytes (default: none). Throws INVALID_ARGUMENT naming the problem, RESOURCE_EXHAUSTED naming
 * the byte budget a request exceeds (checked from its shapes before any contents are read).
 */
export function validateInferRequest(
  request: ModelInferRequest,
  signature: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[] },
  maxBatchSize: number,
  limits: RequestByteLimits = { maxRequestBytes: Infinity, maxBatchBytes: Infinity },
): ValidatedRequest {
  // Only error messages need it.
  const expectedNames = () => signature.inputs.map((input) => input.name).join(', ');
  const seen = new Set<string>();
  for (const input of request.inputs) {
    if (seen.has(input.name)) throw invalidArgument(`input '${input.name}' appears twice`);
    seen.add(input.name);
    if (!signature.inputs.some((spec) => spec.name === input.name)) {
      throw invalidArgument(`unexpected input '${input.name}'; the model takes: ${expectedNames()}`);
    }
  }
  for (const spec of signature.inputs) {
    if (!seen.has(spec.name)) throw invalidArgument(`missing input '${spec.name}' (${spec.datatype} [${spec.shape}]); the model takes: ${expectedNames()}`);
  }

  const raw = request.rawInputContents.length > 0;
  if (raw && request.rawInputContents.length !== request.inputs.length) {
    throw invalidArgument(`raw_input_contents has ${request.rawInputContents.length} entries but there are ${request.inputs.length} inputs; send one per input, in order`);
  }

  const batchable = isBatchable(signature.inputs);
  // The declared shapes say how big the request is before a single value is read.
  let declaredBytes = 0;
  for (const input of request.inputs) {
    if (!isDatatype(input.datatype) || !input.shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) continue;
    declaredBytes += input.shape.reduce((product, dim) => product * dim, 1) * BYTES_PER_ELEMENT[input.datatype];
  }
  if (declaredBytes > Math.min(limits.maxRequestBytes, limits.maxBatchBytes)) {
    const [budget, limit] = limits.maxRequestBytes <= limits.maxBatchBytes
      ? ['the per-request byte budget', limits.maxRequestBytes] : ['the executor message limit', limits.maxBatchBytes];
    throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
      `the request's inputs take ${declaredBytes} bytes (${mib(declaredBytes)}) by their shapes, over ${budget} of ${limit} bytes (${mib(limit)}); send fewer rows per request`);
  }
  let rows: number | undefined;
  const byName = new Map<string, ValidatedInput>();
  request.inputs.forEach((input, index) => {
    const spec = signature.inputs.find((candidate) => candidate.name === input.name)!;
    if (!isDatatype(input.datatype)) throw invalidArgument(`input '${input.name}': unknown datatype '${input.datatype}'`);
    if (input.datatype !== spec.datatype) {
      throw invalidArgument(`input '${input.name}' must be ${spec.datatype}, got ${input.datatype}`);
    }
    const shape = input.shape;
    // A zero-length dim is a valid empty tensor (the executor answers empty outputs without running a kernel on it).
    const wrongShape = shape.length !== spec.shape.length
      || shape.some((dim, axis) => !Number.isSafeInteger(dim) || dim < 0 || (spec.shape[axis] !== -1 && spec.shape[axis] !== dim));
    if (wrongShape) {
      throw invalidArgument(`input '${input.name}' has shape [${shape}], the model expects [${spec.shape}] (-1 = any size)`);
    }
    if (batchable) {
      if (rows !== undefined && shape[0] !== rows) {
        throw invalidArgument(`input '${input.name}' has ${shape[0]} rows along dimension 0, other inputs have ${rows}`);
      }
      rows = shape[0];
    }
    const count = elementCount(shape);
    let data: Uint8Array;
    if (raw) {
      if (hasTypedContents(input.contents)) {
        throw invalidArgument(`input '${input.name}': contents must not be set when raw_input_contents is used`);
      }
      data = request.rawInputContents[index];
      const expectedBytes = count * BYTES_PER_ELEMENT[input.datatype];
      if (data.byteLength !== expectedBytes) {
        throw invalidArgument(`raw_input_contents[${index}] for input '${input.name}' has ${data.byteLength} bytes, shape [${shape}] of ${input.datatype} needs ${expectedBytes}`);
      }
    } else {
      if (!input.contents) throw invalidArgument(`input '${input.name}' has no contents and there is no raw_input_contents`);
      data = typedContentsToBytes(input.name, input.datatype, input.contents, count);
    }
    byName.set(input.name, { name: input.name, datatype: input.datatype, shape, data });
  });

  const effectiveRows = rows ?? 1;
  if (batchable && effectiveRows > maxBatchSize) {
    throw invalidArgument(`the request has ${effectiveRows} rows along dimension 0, more than the model's max batch size ${maxBatchSize}`);
  }

  const outputNames = request.outputs.length === 0
    ? signature.outputs.map((output) => output.name)
    : request.outputs.map((output) => {
      if (!signature.outputs.some((spec) => spec.name === output.name)) {
        throw invalidArgument(`requested output '${output.name}' does not exist; the model's outputs: ${signature.outputs.map((spec) => spec.name).join(', ')}`);
      }
      return output.name;
    });

  const inputs = signature.inputs.map((spec) => byName.get(spec.name)!);
  let outputBytes = 0;
  for (const spec of signature.outputs) {
    const bytes = staticBytes(spec, effectiveRows, batchable);
    if (bytes === undefined) {
      outputBytes = 0;
      break;
    }
    outputBytes += bytes;
  }
  if (limits.maxResponseBytes === undefined && outputBytes > limits.maxBatchBytes) {
    throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
      `the request's outputs would take ${outputBytes} bytes (${mib(outputBytes)}), over the executor message limit of ${limits.maxBatchBytes} bytes (${mib(limits.maxBatchBytes)}); send fewer rows per request`);
  }
  const responseBytes = limits.maxResponseBytes === undefined ? undefined : responseWireBytes(signature, outputNames, effectiveRows, batchable, raw);
  if (responseBytes !== undefined && responseBytes + RESPONSE_ENVELOPE_BYTES > limits.maxResponseBytes!) {
    throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
      `the answer would take up to ${responseBytes} bytes (${mib(responseBytes)}${raw ? '' : ', as typed contents'}), over the response message limit of ${limits.maxResponseBytes} bytes (${mib(limits.maxResponseBytes!)}); send fewer rows per request${raw ? '' : ', or ask for raw_output_contents by sending raw inputs'}`);
  }
  const inputBytes = inputs.reduce((sum, input) => sum + input.data.byteLength, 0);
  // A model without a batch dimension runs one request at a time: give each request its own key.
  const shapeKey = batchable ? inputs.map((input) => `${input.name}:${input.shape.slice(1).join('x')}`).join('|') : '';
  return { inputs, rows: effectiveRows, shapeKey, outputNames, rawOutput: raw, inputBytes, outputBytes };
}
