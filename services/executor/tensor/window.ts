/**
 * Sliding-window geometry shared by Conv, ConvTranspose and the pools: output spatial sizes and
 * effective pads from kernel, strides, dilations, pads and auto_pad. Pure; INVALID_ARGUMENT when
 * a window does not fit.
 */
import { invalidArgument } from '../../domain/errors.ts';

/** ONNX auto_pad values. */
export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';

/** Spatial window geometry shared by Conv and the pools. */
export interface WindowAttributes {
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** Begin pads then end pads, one per spatial dim (NOTSET only). */
  pads: number[];
  autoPad: AutoPad;
  ceilMode?: boolean;
}

/** Output spatial dims and the effective begin / end pads of a sliding window. */
export function windowGeometry(inputSpatial: readonly number[], attributes: WindowAttributes): { outSpatial: number[]; padBegin: number[]; padEnd: number[] } {
  const rank = inputSpatial.length;
  const outSpatial: number[] = [];
  const padBegin: number[] = [];
  const padEnd: number[] = [];
  for (let dim = 0; dim < rank; dim++) {
    const size = inputSpatial[dim];
    const stride = attributes.strides[dim];
    const extent = (attributes.kernel[dim] - 1) * attributes.dilations[dim] + 1;
    if (attributes.autoPad === 'SAME_UPPER' || attributes.autoPad === 'SAME_LOWER') {
      const out = Math.ceil(size / stride);
      const [begin, end] = splitSamePad(Math.max(0, (out - 1) * stride + extent - size), attributes.autoPad === 'SAME_UPPER');
      outSpatial.push(out);
      padBegin.push(begin);
      padEnd.push(end);
      continue;
    }
    const [begin, end] = attributes.autoPad === 'VALID' ? [0, 0] : [attributes.pads[dim], attributes.pads[dim + rank]];
    const span = size + begin + end - extent;
    if (span < 0) {
      throw invalidArgument(`window of ${extent} (kernel ${attributes.kernel[dim]}, dilation ${attributes.dilations[dim]}) does not fit spatial dim ${dim} of size ${size} with pads ${begin}+${end}`);
    }
    let out = (attributes.ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
    // With ceil_mode the last window must still start inside the input or the begin padding.
    if (attributes.ceilMode && (out - 1) * stride >= size + begin) out--;
    outSpatial.push(out);
    padBegin.push(begin);
    padEnd.push(end);
  }
  return { outSpatial, padBegin, padEnd };
}

/** Splits an auto_pad SAME total between begin and end: the odd pixel at the end when `upper`. */
function splitSamePad(total: number, upper: boolean): [begin: number, end: number] {
  const small = Math.floor(total / 2);
  return upper ? [small, total - small] : [total - small, small];
}

/** ConvTranspose output spatial dims and effective pads (ONNX opset 11+ formulas). */
export function convTransposeGeometry(
  inputSpatial: readonly number[],
  attributes: WindowAttributes & { outputPadding: number[]; outputShape?: number[] },
): { outSpatial: number[]; padBegin: number[]; padEnd: number[] } {
  const rank = inputSpatial.length;
  const outSpatial: number[] = [];
  const padBegin: number[] = [];
  const padEnd: number[] = [];
  for (let dim = 0; dim < rank; dim++) {
    const stride = attributes.strides[dim];
    const extent = (attributes.kernel[dim] - 1) * attributes.dilations[dim] + 1;
    const full = stride * (inputSpatial[dim] - 1) + attributes.outputPadding[dim] + extent;
    if (attributes.outputShape || attributes.autoPad === 'SAME_UPPER' || attributes.autoPad === 'SAME_LOWER') {
      const out = attributes.outputShape ? attributes.outputShape[dim] : inputSpatial[dim] * stride;
      // As the ONNX spec and onnxruntime: SAME_UPPER puts the odd pad at the end, SAME_LOWER and
      // an explicit output_shape at the start.
      const [begin, end] = splitSamePad(Math.max(0, full - out), attributes.autoPad === 'SAME_UPPER');
      outSpatial.push(out);
      padBegin.push(begin);
      padEnd.push(end);
      continue;
    }
    const [begin, end] = attributes.autoPad === 'VALID' ? [0, 0] : [attributes.pads[dim], attributes.pads[dim + rank]];
    const out = full - begin - end;
    if (out < 0) throw invalidArgument(`ConvTranspose pads ${begin}+${end} exceed the output of spatial dim ${dim}`);
    outSpatial.push(out);
    padBegin.push(begin);
    padEnd.push(end);
  }
  return { outSpatial, padBegin, padEnd };
}
