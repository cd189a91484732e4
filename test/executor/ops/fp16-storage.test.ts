/**
 * The newer operator families in fp16 storage (floats stored as f16, arithmetic in f32) against
 * onnxruntime's fp32 CPU results within FP16_TOLERANCE: one case per kernel (LRN, the group
 * normalizations, the maths table, Sum / Mean, the extra reductions, ArgMax, CumSum, Trilu,
 * DepthToSpace, Mod). On an adapter without shader-f16 the executor runs fp16 requests in fp32,
 * which the same tolerance accepts; the reported precision says which ran.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openGpu } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { float } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { buildOneNodeModel, freshInputs, int64, type InputSpec, type OneNodeCase } from '../numerics/one-node.ts';
import { expectClose, expectCloseFp16, randomTensor, runOrt } from '../numerics/ort-reference.ts';

const gpu = await openGpu();
afterAll(() => gpu.destroy());

async function checkFp16(testCase: OneNodeCase): Promise<void> {
  const bytes = buildOneNodeModel(testCase);
  const model = await compileOnnxModel(gpu, bytes, { precision: 'fp16', isolate: false });
  try {
    expect(model.precision).toBe(gpu.hasF16 ? 'fp16' : 'fp32');
    const specs = testCase.inputs.map((input): InputSpec => (Array.isArray(input) ? { name: input[0], shape: input[1] } : input));
    const feeds = freshInputs(specs, testCase.scale);
    const [ours, reference] = await Promise.all([model.run(feeds), runOrt(bytes, feeds)]);
    for (const [name, tensor] of reference) {
      if (tensor.datatype === 'FP32') expectCloseFp16(name, ours.outputs.get(name), tensor);
      else expectClose(name, ours.outputs.get(name), tensor);
    }
  } finally {
    model.dispose();
  }
}

/** A shuffle of 0 .. n - 1 (exact in f16 below 2048): distinct values, so the argmax survives rounding. */
const distinct = (shape: number[]): HostTensor => {
  const count = shape.reduce((total, dim) => total * dim, 1);
  const values = Float32Array.from({ length: count }, (_, index) => index);
  for (let index = count - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1));
    [values[index], values[other]] = [values[other], values[index]];
  }
  return { datatype: 'FP32', shape, data: values };
};

const positive = (shape: number[]): HostTensor => {
  const tensor = randomTensor(shape);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) data[index] = 1.75 + 1.25 * data[index];
  return tensor;
};

/** Random values with NaN and infinities mixed in. */
const special = (shape: number[]): HostTensor => {
  const tensor = randomTensor(shape);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index += 3) data[index] = [Number.NaN, Infinity, -Infinity][(index / 3) % 3];
  return tensor;
};

const CASES: Array<[label: string, testCase: OneNodeCase]> = [
  ['LRN', { op: 'LRN', inputs: [['x', [2, 5, 3, 7]]], output: [2, 5, 3, 7], attributes: { size: 3, alpha: float(0.1) }, opset: 13 }],
  ['InstanceNormalization', { op: 'InstanceNormalization', inputs: [['x', [2, 3, 17, 19]], ['s', [3]], ['b', [3]]], output: [2, 3, 17, 19], opset: 22 }],
  ['GroupNormalization', { op: 'GroupNormalization', inputs: [['x', [2, 6, 5, 3]], ['s', [6]], ['b', [6]]], output: [2, 6, 5, 3], attributes: { num_groups: 3 }, opset: 21 }],
  ['LayerNormalization with Mean and InvStdDev', {
    op: 'LayerNormalization', inputs: [['x', [3, 5, 8]], ['s', [8]], ['b', [8]]],
    outputs: [{ name: 'y', shape: [3, 5, 8] }, { name: 'mean', shape: [3, 5, 1] }, { name: 'inv_std', shape: [3, 5, 1] }], opset: 17,
  }],
  ['RMSNormalization', { op: 'RMSNormalization', inputs: [['x', [4, 9]], ['s', [9]]], output: [4, 9], opset: 23 }],
  ['MeanVarianceNormalization', { op: 'MeanVarianceNormalization', inputs: [['x', [2, 3, 4, 5]]], output: [2, 3, 4, 5], opset: 13 }],
  ['Sin', { op: 'Sin', inputs: [['x', [5, 7]]], output: [5, 7], scale: 3, opset: 13 }],
  ['Mish', { op: 'Mish', inputs: [['x', [5, 7]]], output: [5, 7], scale: 4, opset: 18 }],
  ['IsNaN (BOOL from f16)', { op: 'IsNaN', inputs: [{ name: 'x', shape: [5, 7], fill: special }], outputs: [{ name: 'y', shape: [5, 7], datatype: 'BOOL' }], opset: 13 }],
  ['Mod fmod=1', { op: 'Mod', inputs: [['a', [4, 6]], { name: 'b', shape: [6], fill: positive }], output: [4, 6], attributes: { fmod: 1 }, scale: 5, opset: 13 }],
  ['Mean of three', { op: 'Mean', inputs: [['a', [3, 4]], ['b', [4]], ['c', [3, 1]]], output: [3, 4], opset: 13 }],
  ['ReduceLogSumExp', {
    op: 'ReduceLogSumExp', inputs: [['x', [3, 300]]], nodeInputs: ['x', 'axes'], initializers: [{ name: 'axes', tensor: int64([1]) }], output: [3, 1], scale: 50, opset: 18,
  }],
  ['ReduceL2', { op: 'ReduceL2', inputs: [['x', [4, 7]]], output: [4], attributes: { axes: [1], keepdims: 0 }, opset: 13 }],
  ['ArgMax', { op: 'ArgMax', inputs: [{ name: 'x', shape: [3, 50], fill: distinct }], outputs: [{ name: 'y', shape: [3, 1], datatype: 'INT64' }], attributes: { axis: 1 }, opset: 13 }],
  ['CumSum', {
    op: 'CumSum', inputs: [{ name: 'x', shape: [3, 40], fill: positive }], nodeInputs: ['x', 'axis'], initializers: [{ name: 'axis', tensor: int64([1], []) }],
    output: [3, 40], opset: 14,
  }],
  ['Trilu', { op: 'Trilu', inputs: [['x', [2, 5, 6]]], output: [2, 5, 6], attributes: { upper: 0 }, opset: 14 }],
  ['DepthToSpace', { op: 'DepthToSpace', inputs: [['x', [1, 8, 3, 4]]], output: [1, 2, 6, 8], attributes: { blocksize: 2, mode: 'CRD' }, opset: 13 }],
];

describe('fp16 storage', () => {
  for (const [label, testCase] of CASES) it(label, () => checkFp16(testCase));
});
