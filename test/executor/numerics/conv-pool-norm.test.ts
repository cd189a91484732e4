/**
 * The windowed and normalizing operators, one node at a time, against onnxruntime on fresh random
 * inputs and weights: Conv (groups, depthwise, strides, dilations, explicit and automatic pads,
 * 1-D and 2-D, with and without bias), ConvTranspose, BatchNormalization, MaxPool and
 * AveragePool (ceil_mode, count_include_pad), the global pools, LayerNormalization, and the
 * MatMul / Gemm edge cases kernels.test.ts leaves out. Sizes are odd on purpose: channel counts
 * and spatial sizes that fill no tile or workgroup exactly.
 *
 * Output shapes are computed here from the ONNX formulas, independently of the executor's shape
 * code; onnxruntime's shapes must agree too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import type { GemmAlgorithm } from '../../../services/executor/kernels/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { float, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { buildOneNodeModel, checkOneNode, freshInputs, type InputSpec, type OneNodeCase } from './one-node.ts';
import { expectMatchesOrt, randomTensor } from './ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';

/**
 * Convolutions and products run as implicit GEMMs with one of two algorithms: "simd" (the
 * default on a software adapter like lavapipe) and "tiled" (the default on GPUs). Both run here,
 * so CI on either kind of adapter checks the other's path too.
 */
const ALGORITHMS: GemmAlgorithm[] = ['simd', 'tiled'];

/** checkOneNode with the GEMM algorithm chosen: compile, then two runs on fresh inputs. */
async function checkWithAlgorithm(gemmAlgorithm: GemmAlgorithm, testCase: OneNodeCase & { output: number[] }): Promise<void> {
  const bytes = buildOneNodeModel(testCase);
  const model = await compileOnnxModel(gpu, bytes, { gemmAlgorithm, precision: 'fp32', isolate: false });
  try {
    const specs = testCase.inputs.map((input) => (Array.isArray(input) ? { name: input[0], shape: input[1] } : input));
    for (let round = 0; round < 2; round++) {
      const outputs = await expectMatchesOrt(model, bytes, freshInputs(specs, testCase.scale));
      expect(outputs.get('y')!.shape).toEqual(testCase.output);
    }
  } finally {
    model.dispose();
  }
}

/** Uniform in [low, high): positive variances and scales. */
function between(shape: number[], low: number, high: number): HostTensor {
  const tensor = randomTensor(shape, 1);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) data[index] = low + (data[index] + 1) / 2 * (high - low);
  return tensor;
}

/**
 * One spatial output size of Conv / pooling (ONNX operator docs): explicit pads, or auto_pad.
 * With ceil_mode a window that would start past the input and its begin padding is dropped.
 */
function windowOut(size: number, kernel: number, stride: number, dilation: number, padBegin: number, padEnd: number, autoPad: AutoPad, ceilMode = false): number {
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(size / stride);
  const extent = (kernel - 1) * dilation + 1;
  const [begin, end] = autoPad === 'VALID' ? [0, 0] : [padBegin, padEnd];
  const span = size + begin + end - extent;
  let out = (ceilMode ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  if (ceilMode && (out - 1) * stride >= size + begin) out--;
  return out;
}

interface WindowCase {
  label: string;
  /** Input [N, C, spatial...]. */
  input: number[];
  kernel: number[];
  strides?: number[];
  dilations?: number[];
  /** Begin pads then end pads, ONNX order. */
  pads?: number[];
  autoPad?: AutoPad;
}

/** kernel_shape / strides / dilations / pads / auto_pad as attributes, only those the case sets. */
function windowAttributes(testCase: WindowCase): Record<string, AttributeValue> {
  const attributes: Record<string, AttributeValue> = { kernel_shape: testCase.kernel };
  if (testCase.strides) attributes.strides = testCase.strides;
  if (testCase.dilations) attributes.dilations = testCase.dilations;
  if (testCase.pads) attributes.pads = testCase.pads;
  if (testCase.autoPad) attributes.auto_pad = testCase.autoPad;
  return attributes;
}

/** The spatial output dims of a window case. */
function spatialOut(testCase: WindowCase, ceilMode = false): number[] {
  const spatial = testCase.kernel.length;
  return testCase.kernel.map((kernel, dim) => windowOut(
    testCase.input[2 + dim], kernel, testCase.strides?.[dim] ?? 1, testCase.dilations?.[dim] ?? 1,
    testCase.pads?.[dim] ?? 0, testCase.pads?.[dim + spatial] ?? 0, testCase.autoPad ?? 'NOTSET', ceilMode,
  ));
}

describe.each(ALGORITHMS)('Conv, %s GEMM', (algorithm) => {
  interface ConvCase extends WindowCase {
    outChannels: number;
    group?: number;
    bias: boolean;
  }
  const cases: ConvCase[] = [
    { label: '3→8 channels, 3×3, pads 1, batch 2', input: [2, 3, 17, 19], outChannels: 8, kernel: [3, 3], pads: [1, 1, 1, 1], bias: true },
    {
      label: '5→7, 3×2 kernel, strides 2×1, dilations 1×2, uneven pads', input: [1, 5, 13, 11], outChannels: 7, kernel: [3, 2],
      strides: [2, 1], dilations: [1, 2], pads: [1, 0, 2, 1], bias: false,
    },
    { label: '24→24 on 32×32 (1024 rows: several tiles in every dim)', input: [1, 24, 32, 32], outChannels: 24, kernel: [3, 3], pads: [1, 1, 1, 1], bias: true },
    { label: '1×1 stride 2 (a projection shortcut)', input: [2, 10, 9, 9], outChannels: 13, kernel: [1, 1], strides: [2, 2], bias: false },
    { label: 'group 2, 6→10, 3×3 stride 2', input: [2, 6, 9, 10], outChannels: 10, group: 2, kernel: [3, 3], strides: [2, 2], bias: true },
    { label: 'group 3, 9→6, dilations 2, pads 2', input: [1, 9, 11, 12], outChannels: 6, group: 3, kernel: [3, 3], dilations: [2, 2], pads: [2, 2, 2, 2], bias: false },
    { label: 'depthwise 12 channels, 3×3, pads 1', input: [2, 12, 15, 13], outChannels: 12, group: 12, kernel: [3, 3], pads: [1, 1, 1, 1], bias: true },
    {
      label: 'depthwise with multiplier 2 (6→12), stride 2, dilation 2', input: [1, 6, 14, 17], outChannels: 12, group: 6, kernel: [3, 3],
      strides: [2, 2], dilations: [2, 2], pads: [2, 1, 1, 2], bias: false,
    },
    // An even kernel makes the total padding odd, so SAME_UPPER and SAME_LOWER differ.
    { label: 'auto_pad SAME_UPPER, 4×4 kernel', input: [1, 4, 10, 9], outChannels: 5, kernel: [4, 4], autoPad: 'SAME_UPPER', bias: true },
    { label: 'auto_pad SAME_LOWER, 4×4 kernel', input: [1, 4, 10, 9], outChannels: 5, kernel: [4, 4], autoPad: 'SAME_LOWER', bias: false },
    { label: 'auto_pad SAME_UPPER, 3×3 stride 2 on even sizes', input: [2, 3, 12, 10], outChannels: 8, kernel: [3, 3], strides: [2, 2], autoPad: 'SAME_UPPER', bias: false },
    { label: 'auto_pad VALID, 5×3 kernel', input: [1, 3, 11, 8], outChannels: 4, kernel: [5, 3], autoPad: 'VALID', bias: true },
    { label: 'depthwise, auto_pad SAME_LOWER, 2×2 kernel stride 2', input: [1, 8, 7, 9], outChannels: 8, group: 8, kernel: [2, 2], strides: [2, 2], autoPad: 'SAME_LOWER', bias: true },
    // Windows that lie wholly in the padding read only zeros: those outputs are the bias.
    { label: 'pads wider than the 2×2 kernel', input: [1, 3, 4, 5], outChannels: 4, kernel: [2, 2], pads: [3, 2, 3, 2], bias: true },
    { label: '5×5 kernel on a 3×4 input, pads 1', input: [2, 4, 3, 4], outChannels: 3, kernel: [5, 5], pads: [1, 1, 1, 1], bias: false },
    { label: 'group 4 with 1 output channel per group (8→4), stride 3', input: [1, 8, 13, 14], outChannels: 4, group: 4, kernel: [3, 3], strides: [3, 3], bias: true },
    { label: '1-D: 4→6, kernel 5, stride 2, pads 2', input: [2, 4, 23], outChannels: 6, kernel: [5], strides: [2], pads: [2, 2], bias: true },
    { label: '1-D, group 3 (6→9), auto_pad SAME_UPPER, stride 2', input: [2, 6, 15], outChannels: 9, group: 3, kernel: [4], strides: [2], autoPad: 'SAME_UPPER', bias: true },
    { label: '1-D depthwise, dilation 3', input: [1, 5, 19], outChannels: 5, group: 5, kernel: [3], dilations: [3], pads: [1, 3], bias: false },
  ];
  it.each(cases)('$label', (testCase) => {
    const group = testCase.group ?? 1;
    const inPerGroup = testCase.input[1] / group;
    const weightShape = [testCase.outChannels, inPerGroup, ...testCase.kernel];
    const fanIn = inPerGroup * testCase.kernel.reduce((product, size) => product * size, 1);
    const initializers = [{ name: 'w', tensor: randomTensor(weightShape, Math.sqrt(3 / fanIn)) }];
    if (testCase.bias) initializers.push({ name: 'b', tensor: randomTensor([testCase.outChannels], 0.5) });
    return checkWithAlgorithm(algorithm, {
      op: 'Conv', inputs: [['x', testCase.input]], nodeInputs: testCase.bias ? ['x', 'w', 'b'] : ['x', 'w'], initializers,
      output: [testCase.input[0], testCase.outChannels, ...spatialOut(testCase)],
      attributes: { ...windowAttributes(testCase), ...(testCase.group ? { group } : {}) },
    });
  });

  it('weights without kernel_shape (taken from the weights)', () =>
    checkWithAlgorithm(algorithm, {
      op: 'Conv', inputs: [['x', [1, 3, 8, 7]]], nodeInputs: ['x', 'w'], initializers: [{ name: 'w', tensor: randomTensor([5, 3, 2, 3], 0.5) }],
      output: [1, 5, 7, 5],
    }));
});

describe('ConvTranspose', () => {
  interface TransposeCase extends WindowCase {
    outChannels: number;
    group?: number;
    bias: boolean;
    outputPadding?: number[];
    outputShape?: number[];
  }
  /** ONNX: stride * (in - 1) + output_padding + extent - pads, or the given / SAME size. */
  function transposeOut(testCase: TransposeCase): number[] {
    const spatial = testCase.kernel.length;
    return testCase.kernel.map((kernel, dim) => {
      const stride = testCase.strides?.[dim] ?? 1;
      const size = testCase.input[2 + dim];
      if (testCase.outputShape) return testCase.outputShape[dim];
      if (testCase.autoPad === 'SAME_UPPER' || testCase.autoPad === 'SAME_LOWER') return size * stride;
      const extent = (kernel - 1) * (testCase.dilations?.[dim] ?? 1) + 1;
      const pads = (testCase.pads?.[dim] ?? 0) + (testCase.pads?.[dim + spatial] ?? 0);
      return stride * (size - 1) + (testCase.outputPadding?.[dim] ?? 0) + extent - pads;
    });
  }
  const cases: TransposeCase[] = [
    { label: '4→6, 3×3 stride 2, pads 1, output_padding 1', input: [2, 4, 7, 5], outChannels: 6, kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1], bias: true },
    { label: 'group 2, 6→4, strides 1×2, dilations 2×1', input: [1, 6, 5, 6], outChannels: 4, group: 2, kernel: [3, 2], strides: [1, 2], dilations: [2, 1], bias: false },
    { label: 'uneven pads, stride 3', input: [1, 3, 4, 5], outChannels: 5, kernel: [4, 3], strides: [3, 3], pads: [2, 0, 1, 1], bias: true },
    // Kernel 3 with stride 2 leaves an odd total padding, so the two SAME modes differ.
    { label: 'auto_pad SAME_UPPER, 3×3 stride 2', input: [1, 3, 5, 6], outChannels: 4, kernel: [3, 3], strides: [2, 2], autoPad: 'SAME_UPPER', bias: false },
    { label: 'auto_pad SAME_LOWER, 3×3 stride 2', input: [1, 3, 5, 6], outChannels: 4, kernel: [3, 3], strides: [2, 2], autoPad: 'SAME_LOWER', bias: true },
    { label: 'output_shape [10, 12]', input: [1, 2, 5, 6], outChannels: 3, kernel: [3, 3], strides: [2, 2], outputShape: [10, 12], bias: true },
    { label: '1-D, kernel 4 stride 2', input: [2, 3, 9], outChannels: 5, kernel: [4], strides: [2], pads: [1, 2], bias: true },
  ];
  it.each(cases)('$label', (testCase) => {
    const group = testCase.group ?? 1;
    const weightShape = [testCase.input[1], testCase.outChannels / group, ...testCase.kernel];
    const initializers = [{ name: 'w', tensor: randomTensor(weightShape, 0.5) }];
    if (testCase.bias) initializers.push({ name: 'b', tensor: randomTensor([testCase.outChannels], 0.5) });
    const attributes = windowAttributes(testCase);
    if (testCase.group) attributes.group = group;
    if (testCase.outputPadding) attributes.output_padding = testCase.outputPadding;
    if (testCase.outputShape) attributes.output_shape = testCase.outputShape;
    return checkOneNode(gpu, {
      op: 'ConvTranspose', inputs: [['x', testCase.input]], nodeInputs: testCase.bias ? ['x', 'w', 'b'] : ['x', 'w'], initializers,
      output: [testCase.input[0], testCase.outChannels, ...transposeOut(testCase)], attributes,
    });
  });
});

describe('BatchNormalization', () => {
  /** Random statistics for `channels`: positive variances, scales around 1. */
  const statistics = (channels: number) => [
    { name: 'scale', tensor: between([channels], 0.5, 1.5) },
    { name: 'shift', tensor: randomTensor([channels], 0.5) },
    { name: 'mean', tensor: randomTensor([channels], 0.5) },
    { name: 'var', tensor: between([channels], 0.2, 2) },
  ];
  const cases: Array<[label: string, shape: number[], epsilon?: number]> = [
    ['[2, 5, 7, 3]', [2, 5, 7, 3]],
    ['[3, 7] (no spatial dims), epsilon 0.01', [3, 7], 0.01],
    ['[2, 6, 9] (1-D)', [2, 6, 9]],
    ['[1, 13, 17, 11]', [1, 13, 17, 11], 1e-3],
  ];
  it.each(cases)('%s', (_label, shape, epsilon) =>
    checkOneNode(gpu, {
      op: 'BatchNormalization', inputs: [['x', shape]], nodeInputs: ['x', 'scale', 'shift', 'mean', 'var'], initializers: statistics(shape[1]),
      output: shape, attributes: epsilon === undefined ? {} : { epsilon: float(epsilon) }, scale: 2,
    }));
});

interface PoolCase extends WindowCase {
  ceilMode?: boolean;
  countIncludePad?: boolean;
  opset?: number;
}

function poolCase(op: 'MaxPool' | 'AveragePool', testCase: PoolCase): OneNodeCase {
  const attributes = windowAttributes(testCase);
  if (testCase.ceilMode) attributes.ceil_mode = 1;
  if (testCase.countIncludePad !== undefined) attributes.count_include_pad = Number(testCase.countIncludePad);
  return {
    op, inputs: [['x', testCase.input]], output: [testCase.input[0], testCase.input[1], ...spatialOut(testCase, testCase.ceilMode)],
    attributes, opset: testCase.opset,
  };
}

describe('MaxPool', () => {
  // Inputs are uniform in [-1, 1): a padded tap that counted as 0 would win over negative windows.
  const cases: PoolCase[] = [
    { label: '3×3 stride 2, pads 1 (a ResNet stem)', input: [2, 5, 13, 11], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    { label: '2×2 stride 2, ceil_mode on odd sizes', input: [1, 3, 7, 9], kernel: [2, 2], strides: [2, 2], ceilMode: true },
    { label: '3×3 stride 2, pads 1, ceil_mode (last window clipped)', input: [1, 4, 8, 10], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true },
    { label: '2×3 kernel, strides 1×2, dilations 2, uneven pads', input: [2, 3, 10, 9], kernel: [2, 3], strides: [1, 2], dilations: [2, 2], pads: [0, 1, 1, 0] },
    { label: 'auto_pad SAME_UPPER, 2×2 kernel', input: [1, 6, 7, 8], kernel: [2, 2], autoPad: 'SAME_UPPER' },
    { label: 'auto_pad SAME_LOWER, 2×2 kernel', input: [1, 6, 7, 8], kernel: [2, 2], autoPad: 'SAME_LOWER' },
    { label: 'auto_pad SAME_UPPER, 3×3 stride 2', input: [1, 3, 9, 8], kernel: [3, 3], strides: [2, 2], autoPad: 'SAME_UPPER' },
    { label: 'auto_pad VALID, 3×2 stride 2', input: [2, 4, 9, 7], kernel: [3, 2], strides: [2, 2], autoPad: 'VALID' },
    { label: '1-D, kernel 3 stride 2, pads 1', input: [2, 5, 17], kernel: [3], strides: [2], pads: [1, 1] },
    { label: '2×2 stride 2, dilations 2, ceil_mode', input: [1, 2, 9, 10], kernel: [2, 2], strides: [2, 2], dilations: [2, 2], ceilMode: true },
    { label: 'kernel as large as the input (7×6)', input: [2, 3, 7, 6], kernel: [7, 6] },
  ];
  it.each(cases)('$label', (testCase) => checkOneNode(gpu, poolCase('MaxPool', testCase)));
});

describe('AveragePool', () => {
  const cases: PoolCase[] = [
    { label: '3×3 stride 2, pads 1, padding excluded', input: [2, 5, 13, 11], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] },
    { label: '3×3 stride 2, pads 1, count_include_pad', input: [2, 5, 13, 11], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], countIncludePad: true },
    { label: '2×2 stride 2, ceil_mode on odd sizes', input: [1, 3, 7, 9], kernel: [2, 2], strides: [2, 2], ceilMode: true },
    // The last window runs past the end padding: count_include_pad counts only the padded input.
    {
      label: '3×3 stride 2, pads 1, ceil_mode and count_include_pad', input: [1, 4, 8, 10], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1],
      ceilMode: true, countIncludePad: true,
    },
    { label: '3×3 stride 2, pads 1, ceil_mode, padding excluded', input: [1, 4, 8, 10], kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceilMode: true },
    { label: 'uneven pads 2×3 kernel, count_include_pad', input: [2, 3, 6, 9], kernel: [2, 3], pads: [1, 0, 0, 2], countIncludePad: true },
    { label: 'auto_pad SAME_UPPER, 2×2 kernel', input: [1, 6, 7, 8], kernel: [2, 2], autoPad: 'SAME_UPPER' },
    { label: 'auto_pad SAME_LOWER, 3×3 stride 2', input: [1, 3, 9, 8], kernel: [3, 3], strides: [2, 2], autoPad: 'SAME_LOWER' },
    { label: 'auto_pad VALID, 3×2', input: [2, 4, 9, 7], kernel: [3, 2], autoPad: 'VALID' },
    { label: 'auto_pad SAME_UPPER, 3×3 stride 2, count_include_pad', input: [1, 3, 7, 8], kernel: [3, 3], strides: [2, 2], autoPad: 'SAME_UPPER', countIncludePad: true },
    { label: 'kernel as large as the input (5×7)', input: [2, 6, 5, 7], kernel: [5, 7] },
    // Dilations came to AveragePool in opset 19.
    { label: 'dilations 2 (opset 19), pads 1', input: [1, 3, 11, 10], kernel: [3, 2], dilations: [2, 2], pads: [1, 1, 1, 1], opset: 19 },
    { label: '1-D, kernel 4 stride 3, pads 2, count_include_pad', input: [2, 5, 16], kernel: [4], strides: [3], pads: [2, 2], countIncludePad: true },
  ];
  it.each(cases)('$label', (testCase) => checkOneNode(gpu, poolCase('AveragePool', testCase)));
});

describe('GlobalAveragePool and GlobalMaxPool', () => {
  const shapes: number[][] = [[2, 7, 5, 3], [1, 24, 16, 16], [3, 5, 11], [2, 3, 1, 1]];
  for (const op of ['GlobalAveragePool', 'GlobalMaxPool']) {
    it.each(shapes.map((shape) => [shape]))(`${op} on %j`, (shape) =>
      checkOneNode(gpu, { op, inputs: [['x', shape]], output: [shape[0], shape[1], ...shape.slice(2).map(() => 1)], scale: 3 }));
  }
});

describe('LayerNormalization', () => {
  interface NormCase {
    label: string;
    shape: number[];
    axis: number;
    bias: boolean;
    epsilon?: number;
    /** Added to every input, to catch a variance computed as E[x²] - mean² (which cancels). */
    offset?: number;
  }
  const cases: NormCase[] = [
    { label: 'axis -1 of [2, 13, 64]', shape: [2, 13, 64], axis: -1, bias: true },
    { label: 'axis -1 of [3, 37], no bias', shape: [3, 37], axis: -1, bias: false },
    { label: 'axis -1 of [4, 300] (rows longer than the workgroup), epsilon 1e-3', shape: [4, 300], axis: -1, bias: true, epsilon: 1e-3 },
    { label: 'axis -1 of [5, 17] around 100 (mean far from zero)', shape: [5, 17], axis: -1, bias: true, offset: 100 },
    { label: 'axis 1 of [2, 3, 4, 5]', shape: [2, 3, 4, 5], axis: 1, bias: true },
    { label: 'axis -2 of [3, 5, 7], no bias', shape: [3, 5, 7], axis: -2, bias: false },
    { label: 'axis 0 of [3, 11] (one row: everything)', shape: [3, 11], axis: 0, bias: true },
  ];
  it.each(cases)('$label', (testCase) => {
    const rank = testCase.shape.length;
    const normalized = testCase.shape.slice(testCase.axis < 0 ? testCase.axis + rank : testCase.axis);
    const offset = testCase.offset ?? 0;
    const x: InputSpec = {
      name: 'x', shape: testCase.shape,
      fill: (shape) => {
        const tensor = randomTensor(shape, 2);
        const data = tensor.data as Float32Array;
        for (let index = 0; index < data.length; index++) data[index] += offset;
        return tensor;
      },
    };
    const initializers = [{ name: 'scale', tensor: between(normalized, 0.5, 1.5) }];
    if (testCase.bias) initializers.push({ name: 'bias', tensor: randomTensor(normalized, 0.5) });
    const attributes: Record<string, AttributeValue> = { axis: testCase.axis };
    if (testCase.epsilon !== undefined) attributes.epsilon = float(testCase.epsilon);
    return checkOneNode(gpu, {
      op: 'LayerNormalization', inputs: [x], nodeInputs: testCase.bias ? ['x', 'scale', 'bias'] : ['x', 'scale'], initializers,
      output: testCase.shape, attributes,
    });
  });
  // onnxruntime's optimizer writes LayerNormalization into models below opset 17, where
  // onnxruntime registers it in the default domain with the same meaning.
  it.each([11, 13, 16])('at opset %i, as onnxruntime-optimized models carry it', (opset) => checkOneNode(gpu, {
    op: 'LayerNormalization', inputs: [['x', [3, 5, 24]]], nodeInputs: ['x', 'scale', 'bias'],
    initializers: [{ name: 'scale', tensor: between([24], 0.5, 1.5) }, { name: 'bias', tensor: randomTensor([24], 0.5) }],
    output: [3, 5, 24], attributes: { axis: -1 }, opset,
  }));
});

describe.each(ALGORITHMS)('MatMul and Gemm edge cases, %s GEMM', (algorithm) => {
  it('K = 1 (an outer product)', () =>
    checkWithAlgorithm(algorithm, { op: 'MatMul', inputs: [['a', [5, 1]], ['b', [1, 7]]], output: [5, 7] }));
  it('K = 513, far past one tile of K', () =>
    checkWithAlgorithm(algorithm, { op: 'MatMul', inputs: [['a', [3, 513]], ['b', [513, 5]]], output: [3, 5] }));
  it('a [10, 1] weight initializer (one column, padded to a vec4 row)', () =>
    checkWithAlgorithm(algorithm, {
      op: 'MatMul', inputs: [['a', [6, 10]]], nodeInputs: ['a', 'w'], initializers: [{ name: 'w', tensor: randomTensor([10, 1]) }], output: [6, 1],
    }));
  it('3-D activations times a 2-D weight initializer with 7 columns', () =>
    checkWithAlgorithm(algorithm, {
      op: 'MatMul', inputs: [['a', [2, 9, 13]]], nodeInputs: ['a', 'w'], initializers: [{ name: 'w', tensor: randomTensor([13, 7]) }], output: [2, 9, 7],
    }));
  it('an empty batch: [0, 5] @ [5, 3]', () =>
    checkWithAlgorithm(algorithm, { op: 'MatMul', inputs: [['a', [0, 5]], ['b', [5, 3]]], output: [0, 3] }));
  it('Gemm with one row (M = 1), transposed weight initializer and C [N]', () =>
    checkWithAlgorithm(algorithm, {
      op: 'Gemm', inputs: [['x', [1, 21]]], nodeInputs: ['x', 'w', 'c'], output: [1, 11], attributes: { transB: 1 },
      initializers: [{ name: 'w', tensor: randomTensor([11, 21]) }, { name: 'c', tensor: randomTensor([11]) }],
    }));
  it('Gemm transA and transB on graph inputs, alpha -1.5, beta 0 (C ignored)', () =>
    checkWithAlgorithm(algorithm, {
      op: 'Gemm', inputs: [['a', [6, 5]], ['b', [3, 6]], ['c', [5, 3]]], output: [5, 3],
      attributes: { transA: 1, transB: 1, alpha: float(-1.5), beta: float(0) },
    }));
  it('Gemm with a transposed weight initializer and C [M, N]', () =>
    checkWithAlgorithm(algorithm, {
      op: 'Gemm', inputs: [['a', [9, 6]]], nodeInputs: ['a', 'w', 'c'], output: [6, 10], attributes: { transA: 1, transB: 1, beta: float(0.5) },
      initializers: [{ name: 'w', tensor: randomTensor([10, 9]) }, { name: 'c', tensor: randomTensor([6, 10]) }],
    }));
});
