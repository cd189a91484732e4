/**
 * Zero-length dims end to end in the executor: a batch of zero rows and a tensor with an empty
 * inner dim run through element-wise, GEMM, normalization, reduction and data-movement operators
 * and match onnxruntime (empty outputs of the right shapes; a reduction or product over an empty
 * dim yields its identity, 0 for a sum). The plan encodes no dispatch whose output is empty.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileGraph, planLayout } from '../../../services/executor/compiler/index.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { decodeModel, type HostTensor } from '../../../services/onnx/model.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import { expectClose, randomTensor, runOrt } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const LIMITS = { maxComputeWorkgroupsPerDimension: 65535, maxStorageBufferBindingSize: 2 ** 27 };
const int64s = (values: number[]) => BigInt64Array.from(values, BigInt);

/** Rows of x [-1, 4]: dense layer + Relu + Softmax, LayerNormalization, a row sum, Transpose, Concat, Cast. */
function batchModel(): Uint8Array {
  const graph = new GraphBuilder('rows').input('x', 'FP32', [-1, 4]);
  graph.initializer('w', 'FP32', [4, 3], randomTensor([4, 3]).data).initializer('b', 'FP32', [3], randomTensor([3]).data);
  graph.initializer('gamma', 'FP32', [4], randomTensor([4]).data).initializer('axis_1', 'INT64', [1], int64s([1]));
  return graph
    .node('MatMul', ['x', 'w'], ['h']).node('Add', ['h', 'b'], ['h2']).node('Relu', ['h2'], ['r']).node('Softmax', ['r'], ['probabilities'], { axis: -1 })
    .node('LayerNormalization', ['x', 'gamma'], ['normalized'], { axis: -1 })
    .node('ReduceSum', ['x', 'axis_1'], ['row_sums'], { keepdims: 1 })
    .node('Transpose', ['x'], ['transposed'], { perm: [1, 0] })
    .node('Concat', ['x', 'x'], ['twice'], { axis: 0 })
    .node('Cast', ['x'], ['as_int'], { to: 6 })
    .output('probabilities', 'FP32', [-1, 3]).output('normalized', 'FP32', [-1, 4]).output('row_sums', 'FP32', [-1, 1])
    .output('transposed', 'FP32', [4, -1]).output('twice', 'FP32', [-1, 4]).output('as_int', 'INT32', [-1, 4])
    .toBytes({ opset: 21 });
}

/** a [2, -1, 3] with the middle dim empty: sums over it are 0, the product a^T a has K = 0 (all zeros), element-wise stays empty. */
function innerModel(): Uint8Array {
  const graph = new GraphBuilder('inner').input('a', 'FP32', [2, -1, 3]);
  graph.initializer('axis_1', 'INT64', [1], int64s([1]));
  return graph
    .node('ReduceSum', ['a', 'axis_1'], ['sums'], { keepdims: 0 })
    .node('Transpose', ['a'], ['at'], { perm: [0, 2, 1] }).node('MatMul', ['at', 'a'], ['gram'])
    .node('Mul', ['a', 'a'], ['squares']).node('Sigmoid', ['squares'], ['squashed'])
    .output('sums', 'FP32', [2, 3]).output('gram', 'FP32', [2, 3, 3]).output('squashed', 'FP32', [2, -1, 3])
    .toBytes({ opset: 21 });
}

/** Runs ours and onnxruntime on `inputs`; compares every output but those in `unchecked`. */
async function expectSameAsOrt(bytes: Uint8Array, inputs: Map<string, HostTensor>, unchecked: readonly string[] = []): Promise<Map<string, HostTensor>> {
  const model = await compileOnnxModel(gpu, bytes, { isolate: false });
  try {
    const [ours, expected] = await Promise.all([model.run(inputs), runOrt(bytes, inputs)]);
    expect([...ours.outputs.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [name, tensor] of expected) if (!unchecked.includes(name)) expectClose(name, ours.outputs.get(name), tensor);
    return ours.outputs;
  } finally {
    model.dispose();
  }
}

/** Labels of the dispatches the plan for `shapes` encodes. */
function plannedSteps(bytes: Uint8Array, shapes: Record<string, number[]>): string[] {
  const graph = compileGraph(decodeModel(bytes), { precision: 'fp32', traits: { gemmAlgorithm: 'tiled' } });
  return planLayout(graph, new Map(Object.entries(shapes)), LIMITS).kernels.map(({ step }) => step.label);
}

describe('zero rows', () => {
  it('every output is empty with its shape, as onnxruntime answers', async () => {
    const outputs = await expectSameAsOrt(batchModel(), new Map([['x', randomTensor([0, 4])]]));
    expect(outputs.get('transposed')!.shape).toEqual([4, 0]);
    expect(outputs.get('as_int')!.datatype).toBe('INT32');
  });

  it('and the same model still matches with rows, before and after', async () => {
    for (const rows of [3, 0, 1]) await expectSameAsOrt(batchModel(), new Map([['x', randomTensor([rows, 4])]]));
  });

  it('encodes no dispatch for zero rows', () => {
    expect(plannedSteps(batchModel(), { x: [3, 4] }).length).toBeGreaterThan(0);
    expect(plannedSteps(batchModel(), { x: [0, 4] })).toEqual([]);
  });
});

describe('an empty inner dim', () => {
  it('sums to zeros, multiplies to zeros over K = 0, and leaves element-wise outputs empty', async () => {
    // onnxruntime 1.30's MatMul leaves its output uninitialized when K = 0; the product of empty
    // operands is zeros, which is what ours must answer.
    const outputs = await expectSameAsOrt(innerModel(), new Map([['a', randomTensor([2, 0, 3])]]), ['gram']);
    expect(Array.from(outputs.get('sums')!.data as Float32Array)).toEqual(new Array(6).fill(0));
    expect(Array.from(outputs.get('gram')!.data as Float32Array)).toEqual(new Array(18).fill(0));
    expect(outputs.get('squashed')!.shape).toEqual([2, 0, 3]);
  });

  it('keeps the dispatches whose outputs are not empty, and only those', () => {
    const steps = plannedSteps(innerModel(), { a: [2, 0, 3] });
    expect(steps.some((label) => label.startsWith('Sigmoid') || label.startsWith('Mul'))).toBe(false);
    expect(steps.some((label) => label.startsWith('ReduceSum'))).toBe(true);
  });
});
