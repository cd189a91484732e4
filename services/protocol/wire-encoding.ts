/**
 * How every gRPC message is serialized (codegen.ts points the generated services' serializers
 * here): a message with a large bytes field (a tensor) is written once into a buffer of its exact
 * size, where BinaryWriter would copy the field into a growing buffer (and again each time the
 * buffer doubles), move it again for each enclosing message whose length outgrows the one byte
 * fork() reserves for it, copy it once more in finish(), and Buffer.from once more after that. A
 * tensor's bytes are now copied once by us and once by grpc-js (its 5-byte frame prefix).
 *
 * Large messages take two passes over the generated encoder: one that only counts (the length of
 * every nested message, in the order fork() opens them), one that writes each length where it
 * belongs. Small messages (no bytes field of LARGE_BYTES or more) take BinaryWriter's one pass, as
 * before, and skip Buffer.from's copy.
 *
 * With `align`, each large bytes field is placed so that its first byte lies at a multiple of 8
 * in the receiver's buffer: grpc-js hands a received message to its decoder as a view at offset
 * RECEIVED_PAYLOAD_OFFSET of a buffer of its own, so the tensor decodes as a view a typed array
 * can read in place instead of a copy (onnx/datatypes.ts viewAs copies a misaligned one). The
 * shift is a padding field, PADDING_FIELD, which no message declares: decoders skip fields they
 * do not know. Only our own executor messages are aligned (codegen.ts), never a public one.
 */
import { protoInt64 } from '@bufbuild/protobuf';
import { BinaryWriter } from '@bufbuild/protobuf/wire';

/** Bytes from which a bytes field makes the message take the two passes. */
export const LARGE_BYTES = 64 * 1024;

/** Where grpc-js's decoder finds a received message: after the 5-byte prefix, in a buffer of its own. */
export const RECEIVED_PAYLOAD_OFFSET = 5;

/** The alignment a large field gets with `align`: enough for every tensor element type. */
export const FIELD_ALIGNMENT = 8;

/** Field number of the padding that aligns a large field; declared by no message, so skipped when decoded. */
const PADDING_FIELD = 2047;
/** PADDING_FIELD as a length-delimited tag (2 varint bytes). */
const PADDING_TAG = (PADDING_FIELD << 3) | 2;
/** Bytes of the smallest padding field: its tag and a one-byte length. */
const MIN_PADDING = 3;

/** A generated message type. */
interface MessageType<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
}

interface WireEncodingOptions {
  /** Put large bytes fields at a multiple of FIELD_ALIGNMENT in the receiver's buffer. Default false. */
  align?: boolean;
}

/** Thrown by SmallMessageWriter at the first large bytes field: that message takes the two passes. */
const FOUND_LARGE_FIELD = new Error('a bytes field of LARGE_BYTES or more');

class SmallMessageWriter extends BinaryWriter {
  override bytes(value: Uint8Array): this {
    if (value.byteLength >= LARGE_BYTES) throw FOUND_LARGE_FIELD;
    return super.bytes(value);
  }
}

/** `message` of `type` as the bytes gRPC sends (see the module comment). */
export function encodeForWire<T>(type: MessageType<T>, message: T, options: WireEncodingOptions = {}): Buffer {
  try {
    const bytes = type.encode(message, new SmallMessageWriter()).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  } catch (error) {
    if (error !== FOUND_LARGE_FIELD) throw error;
  }
  return encodeLarge(type, message, options.align ?? false);
}

function encodeLarge<T>(type: MessageType<T>, message: T, align: boolean): Buffer {
  let paddings: number[] = [];
  let layout = measure(type, message, paddings);
  // A padding lengthens the messages around its field, which can lengthen their length prefixes,
  // and moves every later field: measure again until nothing moves (a pass per large field, at
  // most, and a few more should a prefix grow; past that, the fields stay where they are).
  for (let pass = 0; align && pass < layout.largeFields.length + 4; pass++) {
    const wanted = layout.largeFields.map((field, index) => paddingFor(field.start - (paddings[index] ?? 0)));
    if (wanted.every((padding, index) => padding === (paddings[index] ?? 0))) break;
    paddings = wanted;
    layout = measure(type, message, paddings);
  }
  const writer = new PlacingWriter(layout.size, layout.lengths, paddings);
  type.encode(message, writer as unknown as BinaryWriter);
  return writer.written();
}

/** Bytes of padding field that put data starting at `start` (without padding) at an aligned offset in the receiver's buffer. */
export function paddingFor(start: number): number {
  const shift = (FIELD_ALIGNMENT - ((RECEIVED_PAYLOAD_OFFSET + start) % FIELD_ALIGNMENT)) % FIELD_ALIGNMENT;
  return shift === 0 || shift >= MIN_PADDING ? shift : shift + FIELD_ALIGNMENT;
}

/** What the counting pass found. */
interface Layout {
  size: number;
  /** Length of each nested message, in the order fork() opened them. */
  lengths: number[];
  /** Where each large bytes field's data starts in the message, in write order (paddings included). */
  largeFields: Array<{ start: number }>;
}

function measure<T>(type: MessageType<T>, message: T, paddings: readonly number[]): Layout {
  const counter = new SizeCounter(paddings);
  type.encode(message, counter as unknown as BinaryWriter);
  return counter.layout();
}

function varint32Size(value: number): number {
  return value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;
}

function varint64Size(lo: number, hi: number): number {
  if (hi === 0) return varint32Size(lo >>> 0);
  let size = 5;
  for (let rest = hi >>> 3; rest !== 0; rest >>>= 7) size += 1;
  return size;
}

function checkUint32(value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new Error(`invalid uint32: ${value}`);
}

function checkInt32(value: number): void {
  if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) throw new Error(`invalid int32: ${value}`);
}

const zigzag32 = (value: number) => ((value << 1) ^ (value >> 31)) >>> 0;
function zigzag64(value: string | number | bigint): { lo: number; hi: number } {
  const { lo, hi } = protoInt64.enc(value);
  const sign = hi >> 31;
  return { lo: (lo << 1) ^ sign, hi: ((hi << 1) | (lo >>> 31)) ^ sign };
}

/** The counting pass: BinaryWriter's methods, adding up sizes and writing nothing. */
class SizeCounter {
  private size = 0;
  private readonly lengths: number[] = [];
  /** Open forks: their index in `lengths` and the size when they opened. */
  private readonly open: Array<{ index: number; start: number }> = [];
  /** Each large field's start before the length prefixes of the messages around it, and those messages. */
  private readonly large: Array<{ start: number; within: number[] }> = [];
  private readonly paddings: readonly number[];

  constructor(paddings: readonly number[]) {
    this.paddings = paddings;
  }

  layout(): Layout {
    const largeFields = this.large.map(({ start, within }) => ({
      start: within.reduce((total, index) => total + varint32Size(this.lengths[index]), start),
    }));
    return { size: this.size, lengths: this.lengths, largeFields };
  }

  fork(): this {
    this.open.push({ index: this.lengths.length, start: this.size });
    this.lengths.push(0);
    return this;
  }

  join(): this {
    const fork = this.open.pop();
    if (!fork) throw new Error('invalid state, fork stack empty');
    const length = this.size - fork.start;
    this.lengths[fork.index] = length;
    this.size += varint32Size(length);
    return this;
  }

  tag(fieldNo: number, type: number): this {
    return this.uint32(((fieldNo << 3) | type) >>> 0);
  }

  raw(chunk: Uint8Array): this {
    this.size += chunk.length;
    return this;
  }

  uint32(value: number): this {
    checkUint32(value);
    this.size += varint32Size(value);
    return this;
  }

  int32(value: number): this {
    checkInt32(value);
    this.size += value >= 0 ? varint32Size(value) : 10;
    return this;
  }

  bool(): this {
    this.size += 1;
    return this;
  }

  bytes(value: Uint8Array): this {
    if (value.byteLength >= LARGE_BYTES) {
      this.size += this.paddings[this.large.length] ?? 0;
      this.size += varint32Size(value.byteLength);
      this.large.push({ start: this.size, within: this.open.map((fork) => fork.index) });
      this.size += value.byteLength;
      return this;
    }
    this.size += varint32Size(value.byteLength) + value.byteLength;
    return this;
  }

  string(value: string): this {
    const length = Buffer.byteLength(String(value), 'utf8');
    this.size += varint32Size(length) + length;
    return this;
  }

  float(): this {
    this.size += 4;
    return this;
  }

  double(): this {
    this.size += 8;
    return this;
  }

  fixed32(value: number): this {
    checkUint32(value);
    this.size += 4;
    return this;
  }

  sfixed32(value: number): this {
    checkInt32(value);
    this.size += 4;
    return this;
  }

  sint32(value: number): this {
    checkInt32(value);
    this.size += varint32Size(zigzag32(value));
    return this;
  }

  fixed64(): this {
    this.size += 8;
    return this;
  }

  sfixed64(): this {
    this.size += 8;
    return this;
  }

  int64(value: string | number | bigint): this {
    const { lo, hi } = protoInt64.enc(value);
    this.size += varint64Size(lo, hi);
    return this;
  }

  sint64(value: string | number | bigint): this {
    const { lo, hi } = zigzag64(value);
    this.size += varint64Size(lo, hi);
    return this;
  }

  uint64(value: string | number | bigint): this {
    const { lo, hi } = protoInt64.uEnc(value);
    this.size += varint64Size(lo, hi);
    return this;
  }
}

/** The writing pass: BinaryWriter's methods into a buffer of the counted size, each length known when its message opens. */
class PlacingWriter {
  private readonly buffer: Buffer;
  private readonly view: DataView;
  private pos = 0;
  private forks = 0;
  private largeFields = 0;
  /** Where the last uint32 began: a large bytes field's tag, which its padding goes before. */
  private lastUint32 = 0;
  private readonly lengths: readonly number[];
  private readonly paddings: readonly number[];

  constructor(size: number, lengths: readonly number[], paddings: readonly number[]) {
    this.buffer = Buffer.allocUnsafe(size);
    this.view = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
    this.lengths = lengths;
    this.paddings = paddings;
  }

  written(): Buffer {
    if (this.pos !== this.buffer.byteLength) throw new Error(`wrote ${this.pos} bytes of the ${this.buffer.byteLength} counted`);
    return this.buffer;
  }

  fork(): this {
    return this.uint32(this.lengths[this.forks++]);
  }

  join(): this {
    return this;
  }

  tag(fieldNo: number, type: number): this {
    return this.uint32(((fieldNo << 3) | type) >>> 0);
  }

  raw(chunk: Uint8Array): this {
    this.buffer.set(chunk, this.pos);
    this.pos += chunk.length;
    return this;
  }

  uint32(value: number): this {
    this.lastUint32 = this.pos;
    let rest = value >>> 0;
    while (rest > 0x7f) {
      this.buffer[this.pos++] = (rest & 0x7f) | 0x80;
      rest >>>= 7;
    }
    this.buffer[this.pos++] = rest;
    return this;
  }

  int32(value: number): this {
    if (value >= 0) return this.uint32(value);
    // Negative: sign-extended to 64 bits, 10 bytes.
    let rest = value;
    for (let index = 0; index < 9; index++) {
      this.buffer[this.pos++] = (rest & 0x7f) | 0x80;
      rest >>= 7;
    }
    this.buffer[this.pos++] = 1;
    return this;
  }

  bool(value: boolean): this {
    this.buffer[this.pos++] = value ? 1 : 0;
    return this;
  }

  bytes(value: Uint8Array): this {
    if (value.byteLength >= LARGE_BYTES) this.pad(this.paddings[this.largeFields++] ?? 0);
    this.uint32(value.byteLength);
    return this.raw(value);
  }

  /** Puts a padding field of `size` bytes before the tag just written (generated code writes a field's tag, then its value). */
  private pad(size: number): void {
    if (size === 0) return;
    const tagStart = this.lastUint32;
    const tagEnd = this.pos;
    this.buffer.copyWithin(tagStart + size, tagStart, tagEnd);
    this.pos = tagStart;
    this.uint32(PADDING_TAG);
    this.uint32(size - MIN_PADDING);
    this.buffer.fill(0, this.pos, tagStart + size);
    this.pos = tagEnd + size;
  }

  string(value: string): this {
    const text = String(value);
    this.uint32(Buffer.byteLength(text, 'utf8'));
    this.pos += this.buffer.write(text, this.pos, 'utf8');
    return this;
  }

  float(value: number): this {
    this.view.setFloat32(this.pos, value, true);
    this.pos += 4;
    return this;
  }

  double(value: number): this {
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
    return this;
  }

  fixed32(value: number): this {
    this.view.setUint32(this.pos, value, true);
    this.pos += 4;
    return this;
  }

  sfixed32(value: number): this {
    this.view.setInt32(this.pos, value, true);
    this.pos += 4;
    return this;
  }

  sint32(value: number): this {
    return this.uint32(zigzag32(value));
  }

  fixed64(value: string | number | bigint): this {
    return this.fixed(protoInt64.uEnc(value));
  }

  sfixed64(value: string | number | bigint): this {
    return this.fixed(protoInt64.enc(value));
  }

  private fixed({ lo, hi }: { lo: number; hi: number }): this {
    this.view.setInt32(this.pos, lo, true);
    this.view.setInt32(this.pos + 4, hi, true);
    this.pos += 8;
    return this;
  }

  int64(value: string | number | bigint): this {
    return this.varint64(protoInt64.enc(value));
  }

  sint64(value: string | number | bigint): this {
    return this.varint64(zigzag64(value));
  }

  uint64(value: string | number | bigint): this {
    return this.varint64(protoInt64.uEnc(value));
  }

  /** A 64-bit varint from its two 32-bit halves, as BinaryWriter writes it. */
  private varint64({ lo, hi }: { lo: number; hi: number }): this {
    let low = lo >>> 0;
    let high = hi >>> 0;
    while (high !== 0 || low > 0x7f) {
      this.buffer[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    this.buffer[this.pos++] = low;
    return this;
  }
}
