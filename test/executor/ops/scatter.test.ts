/**
 * ScatterElements (and opset 9's Scatter) and ScatterND against onnxruntime on fresh random
 * inputs: every reduction (none with distinct indices; add, mul, max, min with repeated ones, which
 * combine in order), negative axes and indices, odd sizes, empty updates, INT64 data, the opsets
 * where reductions arrived, and folding on the host.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, checkOneNode, expectRefused, int64, type InputSpec } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';
import { foldedModel } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const count = (shape: readonly number[]) => shape.reduce((total, dim) => total * dim, 1);

/** A random permutation's first `take` entries of 0..length-1, each negative half the time. */
function distinct(length: number, take: number): number[] {
  const values = Array.from({ length }, (_, index) => index);
  for (let index = length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1));
    [values[index], values[other]] = [values[other], values[index]];
  }
  return values.slice(0, take).map((value) => (Math.random() < 0.5 ? value - length : value));
}

/** ScatterElements indices of `shape` along `axis` into a data dim of `length`: distinct per line unless `repeats`. */
function elementIndices(shape: number[], axis: number, length: number, repeats: boolean): HostTensor {
  const values = new Array<number>(count(shape));
  const inner = count(shape.slice(axis + 1));
  const outer = count(shape.slice(0, axis));
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const line = repeats ? Array.from({ length: shape[axis] }, () => Math.floor(Math.random() * length) - (Math.random() < 0.5 ? length : 0)) : distinct(length, shape[axis]);
      line.forEach((value, j) => { values[(o * shape[axis] + j) * inner + i] = value; });
    }
  }
  return int64(values, shape);
}

describe('ScatterElements', () => {
  const cases: Array<[data: number[], indicesShape: number[], axis: number, reduction: string, opset: number]> = [
    [[5, 7], [3, 7], 0, 'none', 13],
    [[5, 7], [5, 4], -1, 'none', 11],
    [[3, 5, 7], [2, 5, 3], 1, 'none', 13],
    [[6, 5], [9, 3], 0, 'add', 16],
    [[3, 5, 7], [3, 11, 2], 1, 'mul', 16],
    [[4, 9], [4, 20], 1, 'max', 18],
    [[4, 9], [7, 9], 0, 'min', 18],
    [[2, 3, 2, 3, 2], [2, 3, 5, 3, 1], 2, 'add', 18],
    [[4, 3], [0, 3], 0, 'add', 16],
  ];
  it.each(cases)('data %j, indices %j, axis %i, reduction %s (opset %i)', (data, indicesShape, axis, reduction, opset) => {
    const dim = axis < 0 ? axis + data.length : axis;
    return checkOneNode(gpu, {
      op: 'ScatterElements', opset, output: data, attributes: { axis, ...(reduction === 'none' ? {} : { reduction }) },
      inputs: [['x', data], { name: 'i', shape: indicesShape, datatype: 'INT64', fill: (shape: number[]) => elementIndices(shape, dim, data[dim], reduction !== 'none') },
        ['u', indicesShape]],
    });
  });
  it('INT64 data with add', () =>
    checkOneNode(gpu, {
      op: 'ScatterElements', opset: 16, attributes: { axis: 1, reduction: 'add' }, outputs: [{ name: 'y', shape: [3, 5], datatype: 'INT64' }],
      inputs: [{ name: 'x', shape: [3, 5], datatype: 'INT64', fill: (shape: number[]) => randomIntegers(shape, -1000, 1000) },
        { name: 'i', shape: [3, 6], datatype: 'INT64', fill: (shape: number[]) => elementIndices(shape, 1, 5, true) },
        { name: 'u', shape: [3, 6], datatype: 'INT64', fill: (shape: number[]) => randomIntegers(shape, -1000, 1000) }],
    }));
  it('Scatter (opset 9)', () =>
    checkOneNode(gpu, {
      op: 'Scatter', opset: 9, output: [6, 4], attributes: { axis: 0 },
      inputs: [['x', [6, 4]], { name: 'i', shape: [3, 4], datatype: 'INT64', fill: (shape: number[]) => elementIndices(shape, 0, 6, false) }, ['u', [3, 4]]],
    }));
  it('folded on the host', () =>
    checkModelAgainstOrt(gpu, foldedModel('ScatterElements', [randomTensor([4, 5]), int64([0, -1, 2, 2, 4, 0], [2, 3]), randomTensor([2, 3])], [4, 5], { axis: 1, reduction: 'add' }, 16),
      [{ name: 'x', shape: [4, 5] }], [{ name: 'y', shape: [4, 5] }]));
  it("reduction 'max' before opset 18 is refused at load", () =>
    expectRefused(gpu, {
      op: 'ScatterElements', opset: 16, output: [3], attributes: { reduction: 'max' },
      inputs: [['x', [3]], { name: 'i', shape: [2], datatype: 'INT64' }, ['u', [2]]],
    }, "reduction='max'"));
});

describe('ScatterND', () => {
  /** Index tuples into `dims`: distinct tuples unless `repeats`. */
  const tuples = (dims: number[], repeats: boolean) => (shape: number[]): HostTensor => {
    const k = shape[shape.length - 1];
    const total = count(dims.slice(0, k));
    const flat = repeats ? Array.from({ length: count(shape.slice(0, -1)) }, () => Math.floor(Math.random() * total)) : distinct(total, count(shape.slice(0, -1))).map((value) => (value < 0 ? value + total : value));
    const values: number[] = [];
    for (const position of flat) {
      let rest = position;
      const tuple = new Array<number>(k);
      for (let j = k - 1; j >= 0; j--) {
        tuple[j] = rest % dims[j];
        rest = Math.floor(rest / dims[j]);
        if (Math.random() < 0.5) tuple[j] -= dims[j];
      }
      values.push(...tuple);
    }
    return int64(values, shape);
  };
  const cases: Array<[data: number[], indicesShape: number[], reduction: string, opset: number]> = [
    [[5, 7], [3, 2], 'none', 11],
    [[5, 7], [3, 1], 'none', 13],
    [[3, 5, 7], [2, 2, 2], 'none', 13],
    [[9], [15, 1], 'add', 16],
    [[4, 5, 3], [6, 1], 'mul', 16],
    [[4, 5, 3], [7, 2], 'max', 18],
    [[4, 5, 3], [5, 3], 'min', 18],
    [[4, 3], [0, 1], 'add', 18],
  ];
  it.each(cases)('data %j, indices %j, reduction %s (opset %i)', (data, indicesShape, reduction, opset) => {
    const k = indicesShape[indicesShape.length - 1];
    const updates: InputSpec = { name: 'u', shape: [...indicesShape.slice(0, -1), ...data.slice(k)] };
    return checkOneNode(gpu, {
      op: 'ScatterND', opset, output: data, attributes: reduction === 'none' ? {} : { reduction },
      inputs: [['x', data], { name: 'i', shape: indicesShape, datatype: 'INT64', fill: tuples(data, reduction !== 'none') }, updates],
    });
  });
  it('folded on the host', () =>
    checkModelAgainstOrt(gpu, foldedModel('ScatterND', [randomTensor([4, 3]), int64([2, -1], [2, 1]), randomTensor([2, 3])], [4, 3]),
      [{ name: 'x', shape: [4, 3] }], [{ name: 'y', shape: [4, 3] }]));
});
