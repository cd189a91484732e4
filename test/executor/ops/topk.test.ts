/**
 * TopK against onnxruntime on fresh random inputs: axes, K from the attribute (opset 1), an
 * initializer, a graph input and a value computed on the GPU (read back), largest and smallest,
 * repeated values (ties go to the lower index), rows longer than a workgroup, no rows, K = 0,
 * integer inputs, and folding on the host.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, checkOneNode, expectRefused, int64, type OutputSpec } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, foldedModel } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const outputs = (shape: number[], datatype: 'FP32' | 'INT64' = 'FP32'): OutputSpec[] =>
  [{ name: 'y', shape, datatype }, { name: 'i', shape: [...shape], datatype: 'INT64' }];

/** Small integers as floats: many equal values, so ties decide the order. */
const ties = (shape: number[]): HostTensor => ({ datatype: 'FP32', shape, data: Float32Array.from(randomIntegers(shape, -3, 3, 'INT32').data as Int32Array) });

describe('TopK', () => {
  const cases: Array<[shape: number[], axis: number, k: number, largest: number]> = [
    [[5, 17], -1, 3, 1],
    [[4, 9, 6], 1, 9, 1],
    [[4, 9, 6], 0, 2, 0],
    [[3, 200], 1, 7, 1],
    [[2, 150, 3], 1, 150, 0],
    [[11], 0, 0, 1],
  ];
  it.each(cases)('%j along axis %i, K %i, largest %i', (shape, axis, k, largest) => {
    const out = shape.map((dim, index) => (index === (axis + shape.length) % shape.length ? k : dim));
    return checkOneNode(gpu, {
      op: 'TopK', inputs: [['x', shape]], outputs: outputs(out), nodeInputs: ['x', 'k'], opset: 11,
      attributes: { axis, largest }, initializers: [{ name: 'k', tensor: int64([k]) }],
    });
  });
  it.each([1, 0])('repeated values: ties by lower index (largest %i)', (largest) =>
    checkOneNode(gpu, {
      op: 'TopK', inputs: [{ name: 'x', shape: [6, 40], fill: ties }], outputs: outputs([6, 12]), nodeInputs: ['x', 'k'], opset: 11,
      attributes: { largest }, initializers: [{ name: 'k', tensor: int64([12]) }],
    }));
  it('K as an attribute (opset 1)', () =>
    checkOneNode(gpu, { op: 'TopK', inputs: [['x', [3, 10]]], outputs: outputs([3, 4]), opset: 1, attributes: { k: 4 } }));
  it('K as an input (opset 10, largest only)', () =>
    checkOneNode(gpu, {
      op: 'TopK', inputs: [['x', [3, 10]]], outputs: outputs([2, 10]), nodeInputs: ['x', 'k'], opset: 10, attributes: { axis: 0 },
      initializers: [{ name: 'k', tensor: int64([2]) }],
    }));
  it('INT64 input', () =>
    checkOneNode(gpu, {
      op: 'TopK', inputs: [{ name: 'x', shape: [4, 13], datatype: 'INT64', fill: (shape: number[]) => randomIntegers(shape, -1000, 1000) }],
      outputs: outputs([4, 5], 'INT64'), nodeInputs: ['x', 'k'], opset: 11, initializers: [{ name: 'k', tensor: int64([5]) }],
    }));
  it('K given as a graph input, then computed on the GPU (read back), changing between runs', async () => {
    const asInput = new GraphBuilder('topk_k_input').input('x', 'FP32', [3, 16]).input('k', 'INT64', [1])
      .node('TopK', ['x', 'k'], ['y', 'i'], {}).output('y', 'FP32', [3, -1]).output('i', 'INT64', [3, -1]).toBytes({ opset: 11 });
    const runs = (name: string) => [5, 1, 16, 5].map((k) => new Map<string, HostTensor>([['x', randomTensor([3, 16])], [name, int64([k])]]));
    expect(await checkRuns(gpu, asInput, runs('k'))).toEqual([0, 0, 0, 0]);
    const computed = new GraphBuilder('topk_k_computed').input('x', 'FP32', [3, 16]).input('q', 'INT64', [1])
      .initializer('zero', 'INT64', [1], BigInt64Array.of(0n)).node('Add', ['q', 'zero'], ['k'])
      .node('TopK', ['x', 'k'], ['y', 'i'], {}).output('y', 'FP32', [3, -1]).output('i', 'INT64', [3, -1]).toBytes({ opset: 11 });
    expect(await checkRuns(gpu, computed, runs('q'))).toEqual([1, 1, 1, 1]);
  });
  it('no rows: empty outputs (onnxruntime itself crashes on this one, so ours is checked alone)', async () => {
    const model = await compileOnnxModel(gpu, new GraphBuilder('topk_no_rows').input('x', 'FP32', [-1, 5]).initializer('k', 'INT64', [1], BigInt64Array.of(2n))
      .node('TopK', ['x', 'k'], ['y', 'i'], {}).output('y', 'FP32', [-1, 2]).output('i', 'INT64', [-1, 2]).toBytes({ opset: 11 }), { isolate: false });
    try {
      const { outputs: result } = await model.run(new Map([['x', randomTensor([0, 5])]]));
      expect(result.get('y')!.shape).toEqual([0, 2]);
      expect(result.get('i')).toMatchObject({ datatype: 'INT64', shape: [0, 2] });
    } finally {
      model.dispose();
    }
  });
  it('folded on the host', () =>
    checkModelAgainstOrt(gpu, foldedModel('TopK', [randomTensor([4, 9]), int64([3])], [4, 3], { largest: 0 }, 11, ['folded_indices']),
      [{ name: 'x', shape: [4, 3] }], [{ name: 'y', shape: [4, 3] }]));
  it('a K beyond the axis fails the run with INVALID_ARGUMENT', async () => {
    const bytes = new GraphBuilder('topk_too_many').input('x', 'FP32', [2, 4]).input('k', 'INT64', [1])
      .node('TopK', ['x', 'k'], ['y', 'i'], {}).output('y', 'FP32', [2, -1]).output('i', 'INT64', [2, -1]).toBytes({ opset: 11 });
    await expect(checkRuns(gpu, bytes, [new Map<string, HostTensor>([['x', randomTensor([2, 4])], ['k', int64([5])]])]))
      .rejects.toThrow(/TopK K 5 must be in 0\.\.4/);
  });
  it('opset 1 without k is refused at load', () =>
    expectRefused(gpu, { op: 'TopK', inputs: [['x', [3, 10]]], outputs: outputs([3, 4]), opset: 1 }, 'no k attribute'));
});
