/**
 * The signal generators of opset 17, on the host: HannWindow, HammingWindow, BlackmanWindow
 * (periodic or symmetric) and MelWeightMatrix, each of the `output_datatype` it names (FLOAT by
 * default). Their inputs are scalars (a size, bin counts, frequencies), so with constant inputs
 * they fold at load; inputs the GPU computes are read back first. Values are computed in float64
 * and rounded once to the output type.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import { datatypeOfOnnxCode } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import { showShape, toNumbers } from '../tensor/index.ts';
import { booleanAttribute, intAttribute } from './attributes.ts';
import type { CpuContext, OperatorSpec } from './contract.ts';
import { reserve, store } from './cpu-indexing.ts';
import { requiredValue } from './parameters.ts';

/** The ONNX code of FLOAT, output_datatype's default. */
const FLOAT_CODE = 1;

const outputDatatype = (node: NodeProto): Datatype => datatypeOfOnnxCode(intAttribute(node, 'output_datatype', FLOAT_CODE));

/** Scalar input `index` as a number; INVALID_ARGUMENT unless it holds exactly one (an integer when `integer`). */
function scalar(context: CpuContext, index: number, what: string, integer: boolean): number {
  const tensor = requiredValue(context, index);
  const values = toNumbers(tensor);
  if (values.length !== 1 || (integer && !Number.isInteger(values[0])) || !Number.isFinite(values[0])) {
    throw invalidArgument(`${context.node.opType} ${what} must be one ${integer ? 'integer' : 'number'}, got ${showShape(tensor.shape)} [${values.slice(0, 4)}]`);
  }
  return values[0];
}

/**
 * The cosine-sum windows: w[n] = a0 - a1 cos(2 pi n / M) + a2 cos(4 pi n / M), with M = size
 * (periodic, the default) or size - 1 (symmetric).
 */
const WINDOW_COEFFICIENTS = {
  HannWindow: [0.5, 0.5, 0],
  HammingWindow: [25 / 46, 21 / 46, 0],
  BlackmanWindow: [0.42, 0.5, 0.08],
} as const;

export type WindowOp = keyof typeof WINDOW_COEFFICIENTS;
export const WINDOW_OPS = Object.keys(WINDOW_COEFFICIENTS) as WindowOp[];

function windowValues(op: WindowOp, size: number, periodic: boolean): Float64Array {
  const [a0, a1, a2] = WINDOW_COEFFICIENTS[op];
  // A symmetric window of one sample has a span of 0: 0 / 0 makes it NaN, as in the ONNX
  // reference and onnxruntime.
  const span = periodic ? size : size - 1;
  return Float64Array.from({ length: size }, (_, n) => a0 - a1 * Math.cos((2 * Math.PI * n) / span) + a2 * Math.cos((4 * Math.PI * n) / span));
}

export function windowSpec(op: WindowOp): OperatorSpec {
  return {
    attributes: ['output_datatype', 'periodic'],
    inputs: [1, 1],
    types: ({ node }) => [outputDatatype(node)],
    cpu(context): HostTensor[] {
      const size = scalar(context, 0, 'size', true);
      if (size < 0) throw invalidArgument(`${op} size ${size} must not be negative`);
      reserve(context, [size], context.outputTypes[0]);
      return [store(context.outputTypes[0], [size], windowValues(op, size, booleanAttribute(context.node, 'periodic', true)))];
    },
  };
}

/** Hertz to mel, and back (the HTK formula ONNX uses). */
const toMel = (hertz: number) => 2595 * Math.log10(1 + hertz / 700);
const fromMel = (mel: number) => 700 * (10 ** (mel / 2595) - 1);

/**
 * MelWeightMatrix: [dft_length / 2 + 1, num_mel_bins] triangular filters, bin i rising from
 * edge i to edge i + 1 and falling to edge i + 2, the num_mel_bins + 2 edges evenly spaced in mel
 * between the lower and upper frequencies (the mel range split in num_mel_bins + 2 steps) and
 * floored to spectrogram bins, as the ONNX reference and onnxruntime compute them.
 */
function melWeights(context: CpuContext): HostTensor[] {
  const melBins = scalar(context, 0, 'num_mel_bins', true);
  const dftLength = scalar(context, 1, 'dft_length', true);
  const sampleRate = scalar(context, 2, 'sample_rate', true);
  const lower = scalar(context, 3, 'lower_edge_hertz', false);
  const upper = scalar(context, 4, 'upper_edge_hertz', false);
  if (melBins < 1 || dftLength < 1 || sampleRate < 1) {
    throw invalidArgument(`MelWeightMatrix num_mel_bins ${melBins}, dft_length ${dftLength} and sample_rate ${sampleRate} must be positive`);
  }
  if (!(lower >= 0 && lower < upper)) throw invalidArgument(`MelWeightMatrix needs 0 <= lower_edge_hertz (${lower}) < upper_edge_hertz (${upper})`);
  const spectrogramBins = Math.floor(dftLength / 2) + 1;
  // Each edge frequency must fall in a spectrogram bin, as onnxruntime checks.
  const topBin = Math.floor(((dftLength + 1) * upper) / sampleRate);
  if (topBin >= spectrogramBins) {
    throw invalidArgument(`MelWeightMatrix upper_edge_hertz ${upper} falls in bin ${topBin}, past the ${spectrogramBins} bins of dft_length ${dftLength} at ${sampleRate} Hz`);
  }
  const shape = [spectrogramBins, melBins];
  reserve(context, shape, context.outputTypes[0]);
  const lowMel = toMel(lower);
  const melStep = (toMel(upper) - lowMel) / (melBins + 2);
  const edges = Array.from({ length: melBins + 2 }, (_, index) => Math.floor(((dftLength + 1) * fromMel(index * melStep + lowMel)) / sampleRate));
  const weights = new Float64Array(spectrogramBins * melBins);
  for (let bin = 0; bin < melBins; bin++) {
    const [low, center, high] = [edges[bin], edges[bin + 1], edges[bin + 2]];
    if (center === low) {
      weights[center * melBins + bin] = 1;
    } else {
      for (let row = low; row <= center; row++) weights[row * melBins + bin] = (row - low) / (center - low);
    }
    for (let row = center; row < high; row++) weights[row * melBins + bin] = (high - row) / (high - center);
  }
  return [store(context.outputTypes[0], shape, weights)];
}

export const melWeightMatrixSpec: OperatorSpec = {
  attributes: ['output_datatype'],
  inputs: [5, 5],
  types: ({ node }) => [outputDatatype(node)],
  cpu: melWeights,
};
