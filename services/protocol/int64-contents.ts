/**
 * INT64 and UINT64 tensor values in typed contents (int64_contents, uint64_contents), exactly.
 *
 * ts-proto types every 64-bit integer field `number[]` and its decoder throws for a value beyond
 * ±(2^53 - 1), the integers a JavaScript number holds exactly. Tensor values use all 64 bits (ids,
 * hashes, nanosecond timestamps), so those two fields carry BigInt64Array / BigUint64Array where a
 * number would not do:
 *  - a request whose contents hold such a value is decoded again by `decodeExactly`, which puts
 *    the exact values there (a request without one decodes as before, as numbers);
 *  - the router answers INT64 / UINT64 outputs with them, always. The generated encoder writes
 *    each element with BinaryWriter.int64 / uint64, which take a bigint exactly.
 * Code that reads the fields takes `Int64Values` / `Uint64Values`. Every other 64-bit field of
 * these requests (shapes, parameters) stays a number, and a value beyond the range is refused by
 * `decodeExactly` with the field's name.
 */
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { GRPCInferenceServiceService, ModelInferRequest } from './generated/inference/grpc_service.ts';
import { SubmitTaskRequest, TasksService } from './generated/nexus/router/v1/tasks.ts';

/** INT64 values of typed contents: numbers as generated code decodes them, or exact. */
export type Int64Values = readonly number[] | BigInt64Array;
/** UINT64 values of typed contents: numbers as generated code decodes them, or exact. */
export type Uint64Values = readonly number[] | BigUint64Array;

/** Exact values in a field ts-proto types `number[]` (see the module comment). */
export const asContentsField = (values: BigInt64Array | BigUint64Array) => values as unknown as number[];

/** A 64-bit field's value is beyond what the field holds; the message names the field. */
export class FieldOutOfRange extends Error {}

const LARGEST_EXACT = BigInt(Number.MAX_SAFE_INTEGER);
const isExact = (value: bigint) => value <= LARGEST_EXACT && value >= -LARGEST_EXACT;
const toBigInt = (value: bigint | string) => (typeof value === 'bigint' ? value : BigInt(value));

function checkExact(value: bigint | string, field: string): void {
  const exact = toBigInt(value);
  if (!isExact(exact)) throw new FieldOutOfRange(`${field} is ${exact}, outside ±(2^53 - 1), the integers this field holds exactly`);
}

const VARINT = 0;
const LENGTH_DELIMITED = 2;

/**
 * Where one input's INT64 and UINT64 contents lie in the message: runs of consecutive varints as
 * flat [start, end, start, end, ...] byte offsets, in wire order.
 */
interface ContentsRuns {
  int64: number[];
  uint64: number[];
}

/** What a walk over a request's bytes found. */
interface Walk {
  /** Per input, in wire order, as the generated decoder keeps them (a repeated `contents` field: the last). */
  inputs: ContentsRuns[];
  /** Every run of contents the generated decoder reads, replaced ones included, in wire order. */
  allRuns: number[];
}

/**
 * Calls `visit` for each field up to `end`; it reads the field's value, or returns false to have
 * it skipped. Stops where the generated decoders stop: an end-group tag or tag 0.
 */
function eachField(reader: BinaryReader, end: number, visit: (field: number, wireType: number) => boolean): void {
  while (reader.pos < end) {
    const tag = reader.uint32();
    if ((tag & 7) === 4 || tag === 0) return;
    if (!visit(tag >>> 3, tag & 7)) reader.skip(tag & 7);
  }
}

/** The end offset of the length-delimited value at the reader. */
const lengthDelimitedEnd = (reader: BinaryReader) => {
  const length = reader.uint32();
  return reader.pos + length;
};

/** Reads a repeated 64-bit varint field (packed or not), handing each value to `each`. */
function eachVarint(reader: BinaryReader, wireType: number, read: () => bigint | string, each: (value: bigint | string, index: number) => void): boolean {
  if (wireType === VARINT) {
    each(read(), 0);
    return true;
  }
  if (wireType !== LENGTH_DELIMITED) return false;
  const end = lengthDelimitedEnd(reader);
  for (let index = 0; reader.pos < end; index++) each(read(), index);
  return true;
}

/** Records the varints of a repeated 64-bit field as a run, in `runs` and in `walk.allRuns`. */
function recordRun(reader: BinaryReader, wireType: number, runs: number[], walk: Walk): boolean {
  if (wireType !== VARINT && wireType !== LENGTH_DELIMITED) return false;
  const end = wireType === VARINT ? undefined : lengthDelimitedEnd(reader);
  const start = reader.pos;
  if (end === undefined) reader.int64();
  else while (reader.pos < end) reader.int64();
  runs.push(start, reader.pos);
  walk.allRuns.push(start, reader.pos);
  return true;
}

/** A map<string, InferParameter> entry: its int64_param and uint64_param must be exact. */
function walkParameterEntry(reader: BinaryReader, end: number, where: string): void {
  let key = '';
  let beyond: { field: string; value: bigint | string } | undefined;
  eachField(reader, end, (field, wireType) => {
    if (wireType !== LENGTH_DELIMITED) return false;
    if (field === 1) {
      key = reader.string();
      return true;
    }
    if (field !== 2) return false;
    eachField(reader, lengthDelimitedEnd(reader), (parameterField, parameterWireType) => {
      if (parameterWireType !== VARINT || (parameterField !== 2 && parameterField !== 5)) return false;
      const value = parameterField === 2 ? reader.int64() : reader.uint64();
      if (!isExact(toBigInt(value))) beyond ??= { field: parameterField === 2 ? 'int64_param' : 'uint64_param', value };
      return true;
    });
    return true;
  });
  // The key may follow the value on the wire.
  if (beyond) checkExact(beyond.value, `${where}[${JSON.stringify(key.slice(0, 100))}].${beyond.field}`);
}

function walkContents(reader: BinaryReader, end: number, runs: ContentsRuns, walk: Walk): void {
  eachField(reader, end, (field, wireType) => {
    if (field === 3) return recordRun(reader, wireType, runs.int64, walk);
    if (field === 5) return recordRun(reader, wireType, runs.uint64, walk);
    return false;
  });
}

function walkInput(reader: BinaryReader, end: number, where: string, walk: Walk): void {
  let runs: ContentsRuns = { int64: [], uint64: [] };
  walk.inputs.push(runs);
  const index = walk.inputs.length - 1;
  let dim = 0;
  eachField(reader, end, (field, wireType) => {
    if (field === 3) return eachVarint(reader, wireType, () => reader.int64(), (value) => checkExact(value, `${where}.shape[${dim++}]`));
    if (wireType !== LENGTH_DELIMITED) return false;
    if (field === 4) walkParameterEntry(reader, lengthDelimitedEnd(reader), `${where}.parameters`);
    else if (field === 5) {
      // The generated decoder keeps the last `contents` of an input.
      runs = { int64: [], uint64: [] };
      walk.inputs[index] = runs;
      walkContents(reader, lengthDelimitedEnd(reader), runs, walk);
    } else return false;
    return true;
  });
}

/** Walks a ModelInferRequest; `prefix` names where it lies ('' at the top, 'request.' in a task). */
function walkInferRequest(reader: BinaryReader, end: number, prefix: string, walk: Walk): void {
  let outputs = 0;
  eachField(reader, end, (field, wireType) => {
    if (wireType !== LENGTH_DELIMITED) return false;
    if (field === 4) walkParameterEntry(reader, lengthDelimitedEnd(reader), `${prefix}parameters`);
    else if (field === 5) walkInput(reader, lengthDelimitedEnd(reader), `${prefix}inputs[${walk.inputs.length}]`, walk);
    else if (field === 6) {
      const where = `${prefix}outputs[${outputs++}].parameters`;
      eachField(reader, lengthDelimitedEnd(reader), (outputField, outputWireType) => {
        if (outputField !== 2 || outputWireType !== LENGTH_DELIMITED) return false;
        walkParameterEntry(reader, lengthDelimitedEnd(reader), where);
        return true;
      });
    } else return false;
    return true;
  });
}

/**
 * Reads like BinaryReader, except that an INT64 / UINT64 contents value beyond ±(2^53 - 1) reads
 * as 0 (the generated decoder would throw for it); the exact values are put in afterwards. A value
 * beyond the range anywhere else still reaches the generated decoder, which throws.
 */
class ContentsPlaceholderReader extends BinaryReader {
  private readonly runs: readonly number[];
  /** Index in `runs` of the first run not wholly before the last read: reads go forward. */
  private next = 0;

  constructor(bytes: Uint8Array, runs: readonly number[]) {
    super(bytes);
    this.runs = runs;
  }

  override int64(): bigint | string {
    const at = this.pos;
    return this.inContents(at, super.int64());
  }

  override uint64(): bigint | string {
    const at = this.pos;
    return this.inContents(at, super.uint64());
  }

  private inContents(at: number, value: bigint | string): bigint | string {
    if (isExact(toBigInt(value))) return value;
    while (this.next < this.runs.length && this.runs[this.next + 1] <= at) this.next += 2;
    return this.next < this.runs.length && this.runs[this.next] <= at ? 0n : value;
  }
}

/** Fills `values` (as long as the generated decoder's array of placeholders) with the varints of `runs` in `bytes`. */
function exactValues<T extends BigInt64Array | BigUint64Array>(bytes: Uint8Array, runs: readonly number[], values: T, signed: boolean): T {
  const reader = new BinaryReader(bytes);
  let index = 0;
  for (let run = 0; run < runs.length; run += 2) {
    reader.pos = runs[run];
    while (reader.pos < runs[run + 1]) values[index++] = toBigInt(signed ? reader.int64() : reader.uint64());
  }
  if (index !== values.length) throw new Error(`typed contents hold ${index} 64-bit values where the message decodes ${values.length}`);
  return values;
}

interface ExactDecoding {
  decode(reader: BinaryReader): unknown;
  walk(reader: BinaryReader, walk: Walk): void;
  inferRequestOf(decoded: unknown): ModelInferRequest | undefined;
}

const INFER_REQUEST: ExactDecoding = {
  decode: (reader) => ModelInferRequest.decode(reader),
  walk: (reader, walk) => walkInferRequest(reader, reader.len, '', walk),
  inferRequestOf: (decoded) => decoded as ModelInferRequest,
};

const SUBMIT_TASK_REQUEST: ExactDecoding = {
  decode: (reader) => SubmitTaskRequest.decode(reader),
  walk: (reader, walk) => eachField(reader, reader.len, (field, wireType) => {
    if (field !== 1 || wireType !== LENGTH_DELIMITED) return false;
    // The generated decoder keeps the last `request`.
    walk.inputs = [];
    walkInferRequest(reader, lengthDelimitedEnd(reader), 'request.', walk);
    return true;
  }),
  inferRequestOf: (decoded) => (decoded as SubmitTaskRequest).request,
};

/** The methods whose request carries typed tensor contents, by path. */
const EXACT_DECODINGS = new Map<string, ExactDecoding>([
  [GRPCInferenceServiceService.modelInfer.path, INFER_REQUEST],
  [GRPCInferenceServiceService.modelStreamInfer.path, INFER_REQUEST],
  [TasksService.submitTask.path, SUBMIT_TASK_REQUEST],
]);

/**
 * For a method whose request carries typed tensor contents: a decoder for the request when the
 * generated one threw for a 64-bit value beyond ±(2^53 - 1). Its INT64 / UINT64 contents come out
 * exact; a shape or parameter beyond the range throws FieldOutOfRange naming the field
 * (`inputs[0].shape[1]`, `parameters["timeout"].int64_param`). Undefined for other methods.
 */
export function exactDecoderFor(path: string): ((bytes: Uint8Array) => unknown) | undefined {
  const decoding = EXACT_DECODINGS.get(path);
  if (!decoding) return undefined;
  return (bytes) => {
    const walk: Walk = { inputs: [], allRuns: [] };
    decoding.walk(new BinaryReader(bytes), walk);
    const decoded = decoding.decode(new ContentsPlaceholderReader(bytes, walk.allRuns));
    const request = decoding.inferRequestOf(decoded);
    walk.inputs.forEach((runs, index) => {
      const contents = request?.inputs[index]?.contents;
      if (!contents) return;
      if (runs.int64.length > 0) contents.int64Contents = asContentsField(exactValues(bytes, runs.int64, new BigInt64Array(contents.int64Contents.length), true));
      if (runs.uint64.length > 0) contents.uint64Contents = asContentsField(exactValues(bytes, runs.uint64, new BigUint64Array(contents.uint64Contents.length), false));
    });
    return decoded;
  };
}
