/**
 * Resize and Upsample against onnxruntime on fresh random inputs: every mode, coordinate
 * transformation and nearest mode, scales and sizes (initializers, graph inputs, values computed
 * on the GPU), cubic with exclude_outside and cubic_coeff_a, tf_crop_and_resize with
 * extrapolation, axes and keep_aspect_ratio_policy, antialias, the opsets where each arrived, and
 * the layouts onnxruntime's CPU kernel takes (2-D, NCHW, NHWC, trilinear).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { float, floats, GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { expectRefused, int64 } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

interface ResizeCase {
  shape: number[];
  scales?: number[];
  sizes?: number[];
  roi?: number[];
  attributes?: Record<string, AttributeValue>;
  opset?: number;
  datatype?: 'FP32' | 'INT32';
}

/** A one-node Resize with its parameters as initializers ('' for the omitted ones). */
function resizeModel({ shape, scales, sizes, roi, attributes = {}, opset = 13, datatype = 'FP32' }: ResizeCase): Uint8Array {
  const graph = new GraphBuilder('resize').input('x', datatype, shape);
  const inputs = ['x'];
  const add = (name: string, tensor: HostTensor | undefined) => {
    if (tensor) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
    inputs.push(tensor ? name : '');
  };
  if (opset < 11) {
    add('scales', { datatype: 'FP32', shape: [scales!.length], data: Float32Array.from(scales!) });
  } else {
    add('roi', roi ? { datatype: 'FP32', shape: [roi.length], data: Float32Array.from(roi) } : opset < 13 ? { datatype: 'FP32', shape: [0], data: new Float32Array(0) } : undefined);
    add('scales', scales ? { datatype: 'FP32', shape: [scales.length], data: Float32Array.from(scales) } : opset < 13 ? { datatype: 'FP32', shape: [0], data: new Float32Array(0) } : undefined);
    if (sizes) add('sizes', int64(sizes));
  }
  while (inputs[inputs.length - 1] === '') inputs.pop();
  graph.node('Resize', inputs, ['y'], attributes, 'resize_under_test').output('y', datatype, []);
  return unrankedOutputs(graph, opset);
}

const fill = (shape: number[], datatype: 'FP32' | 'INT32' = 'FP32') => (datatype === 'INT32' ? randomIntegers(shape, -50, 50, 'INT32') : randomTensor(shape));

async function check(testCase: ResizeCase): Promise<void> {
  await checkRuns(gpu, resizeModel(testCase), [0, 1].map(() => new Map([['x', fill(testCase.shape, testCase.datatype)]])));
}

const NCHW = [2, 3, 5, 7];

describe('Resize nearest', () => {
  const transforms = ['half_pixel', 'asymmetric', 'pytorch_half_pixel', 'align_corners', 'tf_half_pixel_for_nn'];
  const modes = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
  it.each(transforms.flatMap((transform) => modes.map((mode) => [transform, mode])))('%s, %s: up and down', async (transform, mode) => {
    const attributes = { mode: 'nearest', coordinate_transformation_mode: transform, nearest_mode: mode };
    await check({ shape: NCHW, scales: [1, 1, 1.6, 0.7], attributes });
    await check({ shape: NCHW, sizes: [2, 3, 9, 4], attributes });
  });
  it('rank 1 and rank 5, integers, a resized batch axis', async () => {
    await check({ shape: [9], scales: [2.5], attributes: { mode: 'nearest' } });
    await check({ shape: [2, 3, 4, 3, 2], sizes: [3, 3, 6, 2, 5], attributes: { mode: 'nearest', nearest_mode: 'floor' }, datatype: 'INT32' });
  });
  it('tf_crop_and_resize with a roi and an extrapolation value', () =>
    check({ shape: NCHW, sizes: [2, 3, 6, 8], roi: [0, 0, -0.2, 0.1, 1, 1, 1.3, 0.8], attributes: { mode: 'nearest', coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: float(0.75) } }));
  it('opset 10 (scales input, asymmetric, simple rounding)', async () => {
    await check({ shape: NCHW, scales: [1, 1, 2, 3], attributes: { mode: 'nearest' }, opset: 10 });
    await check({ shape: NCHW, scales: [1, 1, 0.6, 0.5], attributes: { mode: 'nearest' }, opset: 10 });
  });
  it('dims that do not change copy the input', () => check({ shape: NCHW, sizes: NCHW, attributes: { mode: 'nearest' } }));
});

describe('Resize linear', () => {
  const transforms = ['half_pixel', 'asymmetric', 'pytorch_half_pixel', 'align_corners'];
  it.each(transforms)('%s: NCHW up and down, 2-D, NHWC, trilinear', async (transform) => {
    const attributes = { mode: 'linear', coordinate_transformation_mode: transform };
    await check({ shape: NCHW, scales: [1, 1, 1.7, 0.6], attributes });
    await check({ shape: [6, 5], sizes: [11, 3], attributes });
    await check({ shape: [1, 5, 7, 3], scales: [1, 1.5, 0.6, 1], attributes });
    await check({ shape: [3, 4, 5], sizes: [5, 2, 9], attributes });
  });
  it('tf_crop_and_resize with an extrapolation value', () =>
    check({ shape: NCHW, sizes: [2, 3, 7, 6], roi: [0, 0, 0.1, -0.3, 1, 1, 1.2, 0.9], attributes: { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: float(-2) } }));
  it('opset 10 and opset 11 (roi and scales inputs, sizes)', async () => {
    await check({ shape: NCHW, scales: [1, 1, 1.5, 2.5], attributes: { mode: 'linear' }, opset: 10 });
    await check({ shape: NCHW, sizes: [2, 3, 4, 10], attributes: { mode: 'linear' }, opset: 11 });
  });
});

describe('Resize cubic', () => {
  it.each(['half_pixel', 'asymmetric', 'align_corners', 'pytorch_half_pixel'])('%s, 2-D and NCHW', async (transform) => {
    await check({ shape: [7, 6], scales: [1.8, 0.7], attributes: { mode: 'cubic', coordinate_transformation_mode: transform } });
    await check({ shape: NCHW, sizes: [2, 3, 9, 5], attributes: { mode: 'cubic', coordinate_transformation_mode: transform } });
  });
  it('exclude_outside and cubic_coeff_a -0.5', () =>
    check({ shape: NCHW, scales: [1, 1, 2.2, 0.8], attributes: { mode: 'cubic', exclude_outside: 1, cubic_coeff_a: -0.5 } }));
  it('tf_crop_and_resize with an extrapolation value', () =>
    check({ shape: [6, 7], sizes: [8, 5], roi: [-0.1, 0.2, 1.1, 0.9], attributes: { mode: 'cubic', coordinate_transformation_mode: 'tf_crop_and_resize', extrapolation_value: float(3) } }));
});

describe('Resize opset 18 and 19', () => {
  it('axes with scales and with sizes', async () => {
    await check({ shape: NCHW, scales: [0.6, 1.5], attributes: { mode: 'linear', axes: [2, 3] }, opset: 18 });
    await check({ shape: NCHW, sizes: [8, 4], attributes: { mode: 'nearest', axes: [-1, 2] }, opset: 18 });
  });
  it.each(['not_larger', 'not_smaller'])('keep_aspect_ratio_policy %s', (policy) =>
    check({ shape: NCHW, sizes: [9, 9], attributes: { mode: 'linear', axes: [2, 3], keep_aspect_ratio_policy: policy }, opset: 18 }));
  it.each([['linear', [1, 1, 0.45, 0.6]], ['linear', [1, 1, 1.5, 0.7]], ['cubic', [1, 1, 0.5, 0.35]]] as const)('antialias, %s by %j', (mode, scales) =>
    check({ shape: [1, 2, 11, 13], scales: [...scales], attributes: { mode, antialias: 1 }, opset: 18 }));
  it('antialias with exclude_outside', () =>
    check({ shape: [1, 2, 11, 13], sizes: [1, 2, 4, 6], attributes: { mode: 'linear', antialias: 1, exclude_outside: 1 }, opset: 18 }));
  it('half_pixel_symmetric (opset 19)', async () => {
    await check({ shape: NCHW, scales: [1, 1, 1.6, 0.7], attributes: { mode: 'linear', coordinate_transformation_mode: 'half_pixel_symmetric' }, opset: 19 });
    await check({ shape: NCHW, sizes: [2, 3, 8, 5], attributes: { mode: 'nearest', coordinate_transformation_mode: 'half_pixel_symmetric' }, opset: 19 });
  });
});

describe('Resize parameters only a run knows', () => {
  it('sizes as a graph input, then computed on the GPU, changing between runs', async () => {
    const model = (onGpu: boolean) => {
      const graph = new GraphBuilder('resize_sizes').input('x', 'FP32', [1, 2, 5, 6]).input(onGpu ? 'q' : 'sizes', 'INT64', [4]);
      if (onGpu) graph.initializer('zero', 'INT64', [1], BigInt64Array.of(0n)).node('Add', ['q', 'zero'], ['sizes']);
      return unrankedOutputs(graph.node('Resize', ['x', '', '', 'sizes'], ['y'], { mode: 'linear' }).output('y', 'FP32', []), 13);
    };
    const runs = (name: string) => [[1, 2, 9, 4], [1, 2, 3, 11], [1, 2, 9, 4]].map((sizes) => new Map<string, HostTensor>([['x', randomTensor([1, 2, 5, 6])], [name, int64(sizes)]]));
    expect(await checkRuns(gpu, model(false), runs('sizes'))).toEqual([0, 0, 0]);
    expect(await checkRuns(gpu, model(true), runs('q'))).toEqual([1, 1, 1]);
  });
});

describe('Upsample', () => {
  it.each(['nearest', 'linear'])('%s, opset 7 (scales attribute) and 9 (scales input)', async (mode) => {
    const x = () => new Map([['x', randomTensor([1, 2, 4, 5])]]);
    const seven = new GraphBuilder('upsample7').input('x', 'FP32', [1, 2, 4, 5]).node('Upsample', ['x'], ['y'], { mode, scales: floats([1, 1, 2, 1.5]) }).output('y', 'FP32', []);
    await checkRuns(gpu, unrankedOutputs(seven, 7), [x(), x()]);
    const nine = new GraphBuilder('upsample9').input('x', 'FP32', [1, 2, 4, 5]).initializer('scales', 'FP32', [4], Float32Array.of(1, 1, 3, 2))
      .node('Upsample', ['x', 'scales'], ['y'], { mode }).output('y', 'FP32', []);
    await checkRuns(gpu, unrankedOutputs(nine, 9), [x(), x()]);
  });
});

describe('Resize refusals', () => {
  it("antialias with mode 'nearest' is refused at load", () =>
    expectRefused(gpu, { op: 'Resize', inputs: [['x', [1, 1, 4, 4]]], output: [1, 1, 2, 2], nodeInputs: ['x', '', 's'], opset: 18,
      attributes: { mode: 'nearest', antialias: 1 }, initializers: [{ name: 's', tensor: { datatype: 'FP32', shape: [4], data: Float32Array.of(1, 1, 0.5, 0.5) } }] },
    "antialias with mode 'nearest'"));
  it('linear on INT32 is refused at load', () =>
    expectRefused(gpu, { op: 'Resize', inputs: [{ name: 'x', shape: [1, 1, 4, 4], datatype: 'INT32' }], outputs: [{ name: 'y', shape: [1, 1, 8, 8], datatype: 'INT32' }],
      nodeInputs: ['x', '', 's'], opset: 13, attributes: { mode: 'linear' }, initializers: [{ name: 's', tensor: { datatype: 'FP32', shape: [4], data: Float32Array.of(1, 1, 2, 2) } }] },
    "INT32 input with mode 'linear'"));
  it('neither scales nor sizes is refused at load', () =>
    expectRefused(gpu, { op: 'Resize', inputs: [['x', [1, 1, 4, 4]]], output: [1, 1, 4, 4], opset: 13, attributes: { mode: 'linear' } }, 'neither scales nor sizes'));
  it('an antialias attribute before opset 18 is refused at load', () =>
    expectRefused(gpu, { op: 'Resize', inputs: [['x', [1, 1, 4, 4]]], output: [1, 1, 2, 2], nodeInputs: ['x', '', 's'], opset: 13,
      attributes: { mode: 'linear', antialias: 1 }, initializers: [{ name: 's', tensor: { datatype: 'FP32', shape: [4], data: Float32Array.of(1, 1, 0.5, 0.5) } }] },
    "attribute 'antialias', which Resize does not define at opset 13"));
});
