/**
 * Triton's classification extension: an output requested with parameter `classification: K`
 * is answered, instead of its scores, as BYTES strings "score:index:label" (or "score:index"
 * when the version has no labels), the K highest of each row in descending order, shape
 * [rows, K] (or [K] for an output of one dimension). Labels are the version's LABELS_TAG, one per
 * line, label i naming class index i. Pure.
 */
import type { ModelInferRequest_InferRequestedOutputTensor } from '../../protocol/generated/inference/grpc_service.ts';
import type { Tensor } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import { isDatatype, viewAs } from '../../onnx/index.ts';
import { invalidArgument, LABELS_TAG } from '../../domain/index.ts';

/** K for each output requested with a classification parameter; INVALID_ARGUMENT for a bad K. */
export function classificationCounts(requested: readonly ModelInferRequest_InferRequestedOutputTensor[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const output of requested) {
    const parameter = output.parameters.classification;
    if (parameter === undefined) continue;
    const count = parameter.int64Param;
    if (count === undefined || !Number.isInteger(count) || count < 1) {
      throw invalidArgument(`outputs['${output.name}'].parameters.classification must be an int64_param of at least 1`);
    }
    counts.set(output.name, count);
  }
  return counts;
}

/** The version's labels (LABELS_TAG, one per line), or none. */
export function labelsOf(tags: Readonly<Record<string, string>>): string[] | undefined {
  const text = tags[LABELS_TAG];
  return text === undefined ? undefined : text.split('\n');
}

const NUMERIC = new Set(['FP32', 'FP64', 'FP16', 'INT8', 'INT16', 'INT32', 'INT64', 'UINT8', 'UINT16', 'UINT32', 'UINT64']);

/** Reads FP16's bits as a number (the view of an FP16 tensor holds them as Uint16). */
function halfToNumber(bits: number): number {
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  const sign = bits & 0x8000 ? -1 : 1;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function scoresOf(tensor: Tensor): number[] {
  if (!isDatatype(tensor.datatype) || !NUMERIC.has(tensor.datatype)) {
    throw invalidArgument(`output '${tensor.name}' is ${tensor.datatype}; classification needs numeric scores`);
  }
  const values = viewAs(tensor.datatype, tensor.data) as ArrayLike<number | bigint>;
  if (tensor.datatype === 'FP16') return Array.from(values as Uint16Array, halfToNumber);
  return Array.from(values, Number);
}

/** Triton writes scores with six significant digits' worth of a float. */
const scoreText = (score: number) => String(Math.fround(score));

/**
 * `tensor` as its top-`count` classes per row: BYTES, shape [rows, K] ([K] for one dimension),
 * K the smaller of `count` and the classes. Ties keep the lower index first.
 */
export function classify(tensor: Tensor, count: number, labels: readonly string[] | undefined): { shape: number[]; strings: string[] } {
  const shape = tensor.shape.map(Number);
  if (shape.length === 0 || shape.length > 2) {
    throw invalidArgument(`output '${tensor.name}' has shape [${shape.join(', ')}]; classification needs [classes] or [rows, classes]`);
  }
  const classes = shape.at(-1)!;
  const rows = shape.length === 2 ? shape[0] : 1;
  const kept = Math.min(count, classes);
  const scores = scoresOf(tensor);
  const strings: string[] = [];
  for (let row = 0; row < rows; row++) {
    const indices = Array.from({ length: classes }, (_, index) => index);
    const rowScores = scores.slice(row * classes, (row + 1) * classes);
    indices.sort((a, b) => rowScores[b] - rowScores[a] || a - b);
    for (const index of indices.slice(0, kept)) {
      const label = labels?.[index];
      strings.push(label === undefined || label === '' ? `${scoreText(rowScores[index])}:${index}` : `${scoreText(rowScores[index])}:${index}:${label}`);
    }
  }
  return { shape: shape.length === 2 ? [rows, kept] : [kept], strings };
}

/** BYTES raw contents: each element as a 4-byte little-endian length and its UTF-8 bytes. */
export function rawBytesOf(strings: readonly string[]): Uint8Array {
  const encoded = strings.map((text) => new TextEncoder().encode(text));
  const bytes = new Uint8Array(encoded.reduce((total, item) => total + 4 + item.byteLength, 0));
  const view = new DataView(bytes.buffer);
  let offset = 0;
  for (const item of encoded) {
    view.setUint32(offset, item.byteLength, true);
    bytes.set(item, offset + 4);
    offset += 4 + item.byteLength;
  }
  return bytes;
}
