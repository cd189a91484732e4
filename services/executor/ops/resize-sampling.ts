/**
 * Resize's sampling along one axis, computed on the host in f32 step by step as onnxruntime's
 * CPU kernel computes it (Math.fround after every operation), so that nearest picks, linear and
 * cubic weights, antialias windows and extrapolated positions agree exactly; the GPU then only
 * forms weighted sums. Resizing is separable: every resized axis is one pass, and each output
 * position along it reads `taps` input positions with weights. Pure.
 */
const f = Math.fround;

export type ResizeMode = 'nearest' | 'linear' | 'cubic';
export type CoordinateTransform =
  | 'half_pixel' | 'asymmetric' | 'pytorch_half_pixel' | 'tf_half_pixel_for_nn' | 'align_corners' | 'tf_crop_and_resize' | 'half_pixel_symmetric';
/** `simple` is Resize-10's and Upsample's rule: ceil when downsampling, else truncation. */
export type NearestMode = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil' | 'simple';

export interface AxisSampling {
  readonly inLength: number;
  readonly outLength: number;
  /** The axis's scale in f32. */
  readonly scale: number;
  readonly roiStart: number;
  readonly roiEnd: number;
}

export interface SamplingOptions {
  readonly mode: ResizeMode;
  readonly transform: CoordinateTransform;
  readonly nearest: NearestMode;
  readonly cubicCoeffA: number;
  readonly excludeOutside: boolean;
  readonly antialias: boolean;
}

/**
 * One axis's table: for output position j, `taps` input positions then `taps` weights (f32 bits);
 * a first position of -1 marks a position that takes the extrapolation value.
 */
export interface AxisTable {
  readonly taps: number;
  readonly words: Uint32Array;
}

/** The input coordinate of output position `x` (in f32, as onnxruntime's transforms compute it). */
function originalCoordinate(transform: CoordinateTransform, x: number, axis: AxisSampling): number {
  const { scale, outLength, inLength, roiStart, roiEnd } = axis;
  switch (transform) {
    case 'asymmetric': return f(x / scale);
    case 'pytorch_half_pixel': return outLength > 1 ? f(f(f(x + 0.5) / scale) - 0.5) : 0;
    case 'tf_half_pixel_for_nn': return f(f(x + 0.5) / scale);
    // length_resized is the output's length, an integer, as the spec's text defines it and
    // onnxruntime, OpenVINO and DirectML compute it. ONNX's Python reference divides by
    // scale * length - 1 instead, which only differs when that product is fractional (its two
    // test_resize_downsample_scales_*_align_corners cases, which onnxruntime excludes too).
    case 'align_corners': return outLength === 1 ? 0 : f(f(x * f(inLength - 1)) / f(outLength - 1));
    case 'tf_crop_and_resize':
      // The second branch is computed in double there (0.5 is a double literal), then narrowed.
      return outLength > 1
        ? f(f(f(roiStart) * f(inLength - 1)) + f(f(f(x * f(f(roiEnd) - f(roiStart))) * f(inLength - 1)) / f(outLength - 1)))
        : f(0.5 * f(f(roiStart) + f(roiEnd)) * (inLength - 1));
    case 'half_pixel_symmetric': {
      const outputWidth = f(scale * inLength);
      const adjustment = f(outLength / outputWidth);
      const center = f(inLength / 2);
      const offset = f(center * f(1 - adjustment));
      return f(offset + (x + 0.5) / scale - 0.5);
    }
    default: return f(f(f(x + 0.5) / scale) - 0.5);
  }
}

/** C's round (halves away from zero). */
const roundHalfAway = (value: number) => Math.sign(value) * Math.round(Math.abs(value));

/** The spacing of f32 values around `value`. */
function f32Ulp(value: number): number {
  return 2 ** (Math.floor(Math.log2(Math.abs(value) || 1)) - 23);
}

function nearestIndex(mode: NearestMode, coordinate: number, downsampling: boolean): number {
  let value = coordinate;
  // onnxruntime's build lands exactly on a half where f32 division falls an ulp or two short
  // (2 / f32(4/7) gives 3.5 there, 3.4999998 here): a coordinate within 4 ulps of a half is
  // rounded as that half, which matches it on every case we probed.
  if ((mode === 'round_prefer_floor' || mode === 'round_prefer_ceil') && Math.abs(value - Math.floor(value) - 0.5) <= 4 * f32Ulp(value)) {
    value = Math.floor(value) + 0.5;
  }
  switch (mode) {
    case 'simple': return downsampling ? Math.ceil(value) : Math.trunc(value);
    case 'round_prefer_ceil': return roundHalfAway(value);
    case 'floor': return Math.floor(value);
    case 'ceil': return Math.ceil(value);
    default: return value === Math.trunc(value) + 0.5 ? Math.floor(value) : roundHalfAway(value);
  }
}

/** Keys' cubic convolution coefficients for the fraction `s`, in f32. */
function cubicCoefficients(s: number, a: number): number[] {
  const abs = Math.abs(s);
  const outer = (t: number) => f(f(f(f(f(f(a * t) - f(5 * a)) * t) + f(8 * a)) * t) - f(4 * a));
  const inner = (t: number) => f(f(f(f(f(f(a + 2) * t) - f(a + 3)) * t) * t) + 1);
  return [outer(f(abs + 1)), inner(abs), inner(f(1 - abs)), outer(f(2 - abs))];
}

/** The antialiasing filters (Pillow's triangle and Keys' cubic), in f32. */
function antialiasFilter(mode: ResizeMode, a: number, value: number): number {
  const x = Math.abs(value);
  if (mode === 'linear') return x < 1 ? f(1 - x) : 0;
  if (x < 1) return f(f(f(f(f(f(a + 2) * x) - f(a + 3)) * x) * x) + 1);
  if (x < 2) return f(f(f(f(f(f(x - 5) * x) + 8) * x) - 4) * a);
  return 0;
}

class TableWriter {
  readonly taps: number;
  readonly words: Uint32Array;
  private readonly floats: Float32Array;
  private readonly ints: Int32Array;

  constructor(taps: number, outLength: number) {
    this.taps = taps;
    this.words = new Uint32Array(Math.max(1, outLength * taps * 2));
    this.floats = new Float32Array(this.words.buffer);
    this.ints = new Int32Array(this.words.buffer);
  }

  set(position: number, indices: readonly number[], weights: readonly number[]): void {
    const base = position * this.taps * 2;
    for (let tap = 0; tap < this.taps; tap++) {
      this.ints[base + tap] = indices[tap] ?? 0;
      this.floats[base + this.taps + tap] = weights[tap] ?? 0;
    }
  }

  extrapolate(position: number): void {
    this.ints[position * this.taps * 2] = -1;
  }
}

/** The sampling table of one resized axis. */
export function axisTable(options: SamplingOptions, axis: AxisSampling): AxisTable {
  if (options.antialias && options.mode !== 'nearest') return antialiasTable(options, axis);
  const { inLength, outLength, scale } = axis;
  const extrapolates = options.transform === 'tf_crop_and_resize';
  const taps = options.mode === 'nearest' ? 1 : options.mode === 'linear' ? 2 : 4;
  const table = new TableWriter(taps, outLength);
  const clampIndex = (index: number) => Math.min(Math.max(index, 0), inLength - 1);
  for (let x = 0; x < outLength; x++) {
    // An axis of scale 1 maps positions one to one, whatever the transform.
    const original = scale === 1 ? x : originalCoordinate(options.transform, x, axis);
    if (extrapolates && scale !== 1 && (original < 0 || original > inLength - 1)) {
      table.extrapolate(x);
      continue;
    }
    if (options.mode === 'nearest') {
      table.set(x, [scale === 1 ? x : clampIndex(nearestIndex(options.nearest, original, scale < 1))], [1]);
    } else if (options.mode === 'linear') {
      const clamped = f(Math.max(0, Math.min(original, inLength - 1)));
      const first = Math.min(Math.trunc(clamped), inLength - 1);
      const second = Math.min(first + 1, inLength - 1);
      // The weight of each neighbour is the distance to the other one.
      const [toFirst, toSecond] = first === second ? [0.5, 0.5] : [f(Math.abs(clamped - first)), f(Math.abs(clamped - second))];
      table.set(x, [first, second], [toSecond, toFirst]);
    } else {
      const base = Math.floor(original);
      const coefficients = cubicCoefficients(f(original - base), options.cubicCoeffA);
      const positions = [base - 1, base, base + 1, base + 2];
      const weights = options.excludeOutside ? coefficients.map((weight, tap) => (positions[tap] < 0 || positions[tap] >= inLength ? 0 : weight)) : coefficients;
      const sum = options.excludeOutside ? weights.reduce((total, weight) => f(total + weight), 0) : 1;
      table.set(x, positions.map(clampIndex), weights.map((weight) => f(weight / sum)));
    }
  }
  return { taps, words: table.words };
}

/** Antialiased linear or cubic sampling (a filter widened by 1 / scale when downsampling), as onnxruntime builds it. */
function antialiasTable(options: SamplingOptions, axis: AxisSampling): AxisTable {
  const { inLength, outLength } = axis;
  const supportSize = options.mode === 'linear' ? 2 : 4;
  const scale = f(1 / axis.scale);
  const support = scale >= 1 ? f(f(supportSize * 0.5) * scale) : f(supportSize * 0.5);
  const taps = Math.ceil(support) * 2 + 1;
  const inverseScale = scale >= 1 ? f(1 / scale) : 1;
  const table = new TableWriter(taps, outLength);
  for (let x = 0; x < outLength; x++) {
    const center = f(0.5 + (scale === 1 ? x : originalCoordinate(options.transform, x, axis)));
    // The reference tests the shifted centre against the input range.
    if (options.transform === 'tf_crop_and_resize' && (center < 0 || center > inLength - 1)) {
      table.extrapolate(x);
      continue;
    }
    // Rounded down (onnxruntime's results show floor, not truncation, for windows starting before 0).
    const minReal = Math.floor(f(center - support) + 0.5);
    const maxReal = Math.floor(f(center + support) + 0.5);
    const minCut = Math.max(minReal, 0);
    const maxCut = Math.min(maxReal, inLength);
    const low = options.excludeOutside ? minCut : minReal;
    const count = (options.excludeOutside ? maxCut : maxReal) - low;
    const weights: number[] = [];
    let total = 0;
    for (let tap = 0; tap < count; tap++) {
      const weight = antialiasFilter(options.mode, options.cubicCoeffA, f(f(f(tap + low - center) + 0.5) * inverseScale));
      weights.push(weight);
      total = f(total + weight);
    }
    if (!options.excludeOutside) {
      // Weights of positions before the start and past the end fold onto the edge positions.
      const before = low < 0 ? -low : 0;
      for (let tap = 0; tap < before; tap++) weights[before] = f(weights[before] + weights[tap]);
      const after = count + low > inLength ? count + low - inLength : 0;
      for (let tap = count - after; tap < count; tap++) weights[count - after - 1] = f(weights[count - after - 1] + weights[tap]);
      if (before > 0 || after > 0) for (let tap = 0; tap < maxCut - minCut; tap++) weights[tap] = weights[tap + before];
    }
    const normalized = weights.slice(0, maxCut - minCut).map((weight) => (total !== 0 && total !== 1 ? f(weight / total) : weight));
    table.set(x, normalized.map((_, tap) => minCut + tap), normalized);
  }
  return { taps, words: table.words };
}
