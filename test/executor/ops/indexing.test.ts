/**
 * GatherElements, GatherND and OneHot against onnxruntime on fresh random inputs: odd sizes,
 * negative axes and indices, batch dims, empty tensors, INT64 data, and each folded on the host
 * when its inputs are constant.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, checkOneNode, expectRefused, int64 } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';
import { foldedModel } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const indices = (low: number, high: number) => (shape: number[]) => randomIntegers(shape, low, high);

describe('GatherElements', () => {
  const cases: Array<[data: number[], indicesShape: number[], axis: number]> = [
    [[5, 7], [3, 7], 0],
    [[5, 7], [5, 9], 1],
    [[3, 5, 7], [3, 4, 7], -2],
    [[3, 5, 7], [2, 3, 11], 2],
    [[13], [29], 0],
    [[2, 3, 2, 3, 2], [2, 3, 4, 3, 1], 2],
    [[4, 3], [0, 3], 0],
  ];
  it.each(cases)('data %j, indices %j, axis %i (negative indices included)', (data, indicesShape, axis) => {
    const length = data[axis < 0 ? axis + data.length : axis];
    return checkOneNode(gpu, {
      op: 'GatherElements', inputs: [['x', data], { name: 'i', shape: indicesShape, datatype: 'INT64', fill: indices(-length, length - 1) }],
      output: indicesShape, attributes: { axis }, opset: 13,
    });
  });
  it('INT64 data and INT32 indices (opset 11)', () =>
    checkOneNode(gpu, {
      op: 'GatherElements', inputs: [
        { name: 'x', shape: [4, 6], datatype: 'INT64', fill: indices(-1e6, 1e6) },
        { name: 'i', shape: [4, 3], datatype: 'INT32', fill: (shape: number[]) => randomIntegers(shape, -6, 5, 'INT32') },
      ],
      outputs: [{ name: 'y', shape: [4, 3], datatype: 'INT64' }], attributes: { axis: 1 }, opset: 11,
    }));
  it('folded on the host', () =>
    checkModelAgainstOrt(gpu, foldedModel('GatherElements', [randomTensor([4, 5]), randomIntegers([4, 3], -5, 4)], [4, 3], { axis: 1 }),
      [{ name: 'x', shape: [4, 3] }], [{ name: 'y', shape: [4, 3] }]));
  it('FP32 indices are refused at load', () =>
    expectRefused(gpu, { op: 'GatherElements', inputs: [['x', [3, 4]], ['i', [3, 4]]], output: [3, 4] }, 'FP32 indices'));
});

describe('GatherND', () => {
  /** Index tuples of length k into `dims`, negative half the time. */
  const tuples = (dims: number[]) => (shape: number[]): HostTensor => {
    const k = shape[shape.length - 1];
    const count = shape.reduce((total, dim) => total * dim, 1);
    return int64(Array.from({ length: count }, (_, index) => {
      const dim = dims[index % k];
      const value = Math.floor(Math.random() * dim);
      return Math.random() < 0.5 ? value - dim : value;
    }), shape);
  };
  const cases: Array<[data: number[], indicesShape: number[], batchDims: number, out: number[]]> = [
    [[5, 7], [3, 2], 0, [3]],
    [[5, 7], [3, 1], 0, [3, 7]],
    [[3, 5, 7], [2, 4, 2], 0, [2, 4, 7]],
    [[3, 5, 7], [3, 4, 1], 1, [3, 4, 7]],
    [[3, 5, 7], [3, 2], 1, [3]],
    [[2, 3, 5, 7], [2, 3, 6, 1], 2, [2, 3, 6, 7]],
    [[4, 3], [0, 1], 0, [0, 3]],
  ];
  it.each(cases)('data %j, indices %j, batch_dims %i', (data, indicesShape, batchDims, output) =>
    checkOneNode(gpu, {
      op: 'GatherND', inputs: [['x', data], { name: 'i', shape: indicesShape, datatype: 'INT64', fill: tuples(data.slice(batchDims)) }],
      output, attributes: { batch_dims: batchDims }, opset: 13,
    }));
  it('opset 11 (no batch_dims)', () =>
    checkOneNode(gpu, {
      op: 'GatherND', inputs: [['x', [4, 5, 3]], { name: 'i', shape: [6, 2], datatype: 'INT64', fill: tuples([4, 5]) }], output: [6, 3], opset: 11,
    }));
  it('folded on the host', () =>
    checkModelAgainstOrt(gpu, foldedModel('GatherND', [randomTensor([4, 5, 3]), int64([0, -1, 3, 2, -4, 0], [3, 2])], [3, 3]),
      [{ name: 'x', shape: [3, 3] }], [{ name: 'y', shape: [3, 3] }]));
});

describe('OneHot', () => {
  const cases: Array<[indicesShape: number[], depth: number, axis: number, out: number[]]> = [
    [[5], 7, -1, [5, 7]],
    [[3, 4], 5, 0, [5, 3, 4]],
    [[3, 4], 6, 1, [3, 6, 4]],
    [[2, 3, 2], 9, -1, [2, 3, 2, 9]],
    [[0, 3], 4, -1, [0, 3, 4]],
  ];
  it.each(cases)('indices %j, depth %i, axis %i (negative indices included)', (indicesShape, depth, axis, output) =>
    checkOneNode(gpu, {
      op: 'OneHot', inputs: [{ name: 'i', shape: indicesShape, datatype: 'INT64', fill: indices(-depth, depth - 1) }], output, attributes: { axis },
      nodeInputs: ['i', 'depth', 'values'], opset: 11,
      initializers: [{ name: 'depth', tensor: int64([depth], []) }, { name: 'values', tensor: { datatype: 'FP32', shape: [2], data: Float32Array.of(-0.5, 2.25) } }],
    }));
  it('FP32 indices and an FP32 depth given as a graph input (opset 9)', () =>
    checkOneNode(gpu, {
      op: 'OneHot', inputs: [
        { name: 'i', shape: [4, 3], fill: (shape: number[]): HostTensor => ({ datatype: 'FP32', shape, data: Float32Array.from(randomIntegers(shape, 0, 5, 'INT32').data as Int32Array) }) },
        { name: 'depth', shape: [1], fill: (): HostTensor => ({ datatype: 'FP32', shape: [1], data: Float32Array.of(6) }) },
      ],
      output: [4, 3, 6], nodeInputs: ['i', 'depth', 'values'], opset: 9,
      initializers: [{ name: 'values', tensor: { datatype: 'FP32', shape: [2], data: Float32Array.of(0, 1) } }],
    }));
  it('INT64 values', () =>
    checkOneNode(gpu, {
      op: 'OneHot', inputs: [{ name: 'i', shape: [7], datatype: 'INT64', fill: indices(-3, 2) }],
      outputs: [{ name: 'y', shape: [7, 3], datatype: 'INT64' }], nodeInputs: ['i', 'depth', 'values'], opset: 11,
      initializers: [{ name: 'depth', tensor: int64([3], []) }, { name: 'values', tensor: int64([-7, 11]) }],
    }));
  it('folded on the host', () =>
    checkModelAgainstOrt(gpu, foldedModel('OneHot', [int64([0, 3, -1, 2]), int64([4], []), { datatype: 'FP32', shape: [2], data: Float32Array.of(0, 1) }], [4, 4], {}, 11),
      [{ name: 'x', shape: [4, 4] }], [{ name: 'y', shape: [4, 4] }]));
});
