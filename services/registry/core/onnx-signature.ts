/**
 * Reads an ONNX model's signature from its bytes as they stream past, in small memory: the
 * protobuf is walked field by field, the graph's inputs and outputs are kept (they are small)
 * and every other field, initializer data above all, is skipped without being held. A 1 GiB
 * model costs a few kilobytes, and the same bytes can go to the store at the same time.
 *
 *   ModelProto  { 1: ir_version, 7: graph, … }
 *   GraphProto  { 5: initializer (TensorProto), 11: input, 12: output, … }
 *   TensorProto { 8: name, 9: raw_data, … }      only the name is read
 */
import { ModelProto, ValueInfoProto } from '../../protocol/generated/onnx/onnx.ts';
import { signatureOf, type ModelSignature } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/index.ts';

/** Largest graph input or output description held, in bytes. */
const MAX_VALUE_INFO_BYTES = 1024 * 1024;
/** Largest initializer name held, in bytes. */
const MAX_NAME_BYTES = 64 * 1024;

type FrameKind = 'model' | 'graph' | 'tensor';
type Collecting = 'input' | 'output' | 'initializer-name';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LENGTH_DELIMITED = 2;
const WIRE_FIXED32 = 5;

const notOnnx = (reason: string) => invalidArgument(`not an ONNX model: ${reason}`);

/**
 * A push parser: `push` every chunk in order, then `finish` for the signature. Throws
 * INVALID_ARGUMENT as soon as the bytes cannot be an ONNX model.
 */
export class OnnxSignatureReader {
  /** Bytes consumed so far. */
  private position = 0;
  /** The messages being read, innermost last, each with the offset where it ends. */
  private readonly frames: Array<{ kind: FrameKind; end: number }> = [{ kind: 'model', end: Number.POSITIVE_INFINITY }];
  private mode: 'tag' | 'length' | 'varint' | 'skip' | 'collect' = 'tag';
  /** The varint being read, possibly across chunks. */
  private varintValue = 0;
  private varintBytes = 0;
  private field = 0;
  private skipUntil = 0;
  private collecting: Collecting = 'input';
  private collected = new Uint8Array(0);
  private collectedBytes = 0;

  private irVersion = 0;
  private sawGraph = false;
  private readonly inputs: ValueInfoProto[] = [];
  private readonly outputs: ValueInfoProto[] = [];
  private readonly initializerNames: string[] = [];

  push(chunk: Uint8Array): void {
    let index = 0;
    while (index < chunk.byteLength) {
      switch (this.mode) {
        case 'tag':
        case 'length':
        case 'varint': {
          const byte = chunk[index++];
          this.position += 1;
          if (this.varintBytes === 0 && this.mode === 'tag') this.closeFinishedFrames(1);
          if (this.varintBytes >= 10) throw notOnnx(`a varint longer than 10 bytes at offset ${this.position}`);
          this.varintValue += (byte & 0x7f) * 2 ** (7 * this.varintBytes);
          this.varintBytes += 1;
          if (byte & 0x80) break;
          const value = this.varintValue;
          this.varintValue = 0;
          this.varintBytes = 0;
          this.checkInsideFrame();
          if (this.mode === 'tag') this.onTag(value);
          else if (this.mode === 'length') this.onLength(value);
          else this.onVarint(value);
          break;
        }
        case 'skip': {
          const take = Math.min(chunk.byteLength - index, this.skipUntil - this.position);
          index += take;
          this.position += take;
          if (this.position === this.skipUntil) this.mode = 'tag';
          break;
        }
        case 'collect': {
          const take = Math.min(chunk.byteLength - index, this.collected.byteLength - this.collectedBytes);
          this.collected.set(chunk.subarray(index, index + take), this.collectedBytes);
          index += take;
          this.position += take;
          this.collectedBytes += take;
          if (this.collectedBytes === this.collected.byteLength) this.onCollected();
          break;
        }
      }
    }
  }

  /** The signature, once every byte was pushed. */
  finish(): ModelSignature {
    if (this.mode !== 'tag' || this.varintBytes > 0) throw notOnnx(`the bytes end inside a field (after ${this.position} bytes)`);
    this.closeFinishedFrames(0);
    if (this.frames.length > 1) throw notOnnx(`the bytes end inside the ${this.frames.at(-1)!.kind} message (after ${this.position} bytes)`);
    if (!this.sawGraph || this.irVersion <= 0) throw notOnnx('no graph or no IR version');
    const model = ModelProto.fromPartial({
      irVersion: this.irVersion,
      graph: { input: this.inputs, output: this.outputs, initializer: this.initializerNames.map((name) => ({ name })) },
    });
    const signature = signatureOf(model);
    if (signature.inputs.length === 0) throw invalidArgument('the ONNX graph has no inputs');
    return signature;
  }

  /** Leaves every message that ended before the field starting `lookBack` bytes ago. */
  private closeFinishedFrames(lookBack: number): void {
    const start = this.position - lookBack;
    while (this.frames.length > 1 && this.frames.at(-1)!.end === start) this.frames.pop();
    if (start > this.frames.at(-1)!.end) throw notOnnx(`a field overruns its ${this.frames.at(-1)!.kind} message at offset ${start}`);
  }

  private checkInsideFrame(): void {
    const frame = this.frames.at(-1)!;
    if (this.position > frame.end) throw notOnnx(`a field overruns its ${frame.kind} message at offset ${this.position}`);
  }

  private onTag(tag: number): void {
    const wireType = tag % 8;
    this.field = Math.floor(tag / 8);
    if (this.field === 0) throw notOnnx(`field number 0 at offset ${this.position}`);
    switch (wireType) {
      case WIRE_VARINT: this.mode = 'varint'; return;
      case WIRE_LENGTH_DELIMITED: this.mode = 'length'; return;
      case WIRE_FIXED64: this.startSkip(8); return;
      case WIRE_FIXED32: this.startSkip(4); return;
      default: throw notOnnx(`wire type ${wireType} (field ${this.field}) at offset ${this.position}`);
    }
  }

  private onVarint(value: number): void {
    if (this.frames.at(-1)!.kind === 'model' && this.field === 1) this.irVersion = value;
    this.mode = 'tag';
  }

  private onLength(length: number): void {
    const frame = this.frames.at(-1)!;
    if (this.position + length > frame.end) {
      throw notOnnx(`field ${this.field} of ${length} bytes at offset ${this.position} overruns its ${frame.kind} message`);
    }
    const end = this.position + length;
    if (frame.kind === 'model' && this.field === 7) {
      this.sawGraph = true;
      this.enter('graph', end);
    } else if (frame.kind === 'graph' && this.field === 5) {
      this.enter('tensor', end);
    } else if (frame.kind === 'graph' && (this.field === 11 || this.field === 12)) {
      this.startCollect(this.field === 11 ? 'input' : 'output', length, MAX_VALUE_INFO_BYTES);
    } else if (frame.kind === 'tensor' && this.field === 8) {
      this.startCollect('initializer-name', length, MAX_NAME_BYTES);
    } else {
      this.startSkip(length);
    }
  }

  private enter(kind: FrameKind, end: number): void {
    this.frames.push({ kind, end });
    this.mode = 'tag';
  }

  private startSkip(length: number): void {
    this.skipUntil = this.position + length;
    this.mode = length === 0 ? 'tag' : 'skip';
  }

  private startCollect(what: Collecting, length: number, limit: number): void {
    if (length > limit) throw notOnnx(`a graph ${what} of ${length} bytes (at most ${limit} are expected)`);
    this.collecting = what;
    this.collected = new Uint8Array(length);
    this.collectedBytes = 0;
    this.mode = 'collect';
    if (length === 0) this.onCollected();
  }

  private onCollected(): void {
    const bytes = this.collected;
    this.collected = new Uint8Array(0);
    this.mode = 'tag';
    if (this.collecting === 'initializer-name') {
      this.initializerNames.push(new TextDecoder('utf-8', { fatal: false }).decode(bytes));
      return;
    }
    let value: ValueInfoProto;
    try {
      value = ValueInfoProto.decode(bytes);
    } catch (error) {
      throw notOnnx(`a graph ${this.collecting} cannot be decoded: ${(error as Error).message}`);
    }
    (this.collecting === 'input' ? this.inputs : this.outputs).push(value);
  }
}
