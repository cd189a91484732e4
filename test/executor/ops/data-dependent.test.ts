/**
 * Shapes decided by values only a run knows: reduction axes, Slice starts, Tile repeats, Expand
 * shapes and Pad pads given as graph inputs (read from the request) or computed on the GPU (read
 * back mid-run, the next segment planned for them and cached by the values). Each case is checked
 * against onnxruntime on fresh inputs, values that change the output shape between runs included,
 * and the read-backs a run made are counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { int64 } from '../numerics/one-node.ts';
import { randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns as checkModelRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const checkRuns = (bytes: Uint8Array, runs: Array<Map<string, HostTensor>>) => checkModelRuns(gpu, bytes, runs);

/**
 * `op` with data `x` and its parameter input `p` (plus `extra` node inputs after it): once with
 * `p` as a graph input, once computed on the GPU from the graph input `q` (p = q + 0).
 */
function parameterGraph(op: string, xShape: Array<number | string>, extra: string[], attributes: Record<string, number | number[]>, opset: number, onGpu: boolean, initializers: Array<[string, HostTensor]> = []) {
  const graph = new GraphBuilder(`${op.toLowerCase()}_parameter`).input('x', 'FP32', xShape);
  graph.input(onGpu ? 'q' : 'p', 'INT64', [-1]);
  if (onGpu) graph.initializer('zero', 'INT64', [1], BigInt64Array.of(0n)).node('Add', ['q', 'zero'], ['p'], {}, 'on_gpu');
  for (const [name, tensor] of initializers) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
  graph.node(op, ['x', 'p', ...extra], ['y'], attributes, `${op.toLowerCase()}_under_test`).output('y', 'FP32', []);
  return unrankedOutputs(graph, opset);
}

const feeds = (x: HostTensor, name: string, values: number[]) => new Map<string, HostTensor>([['x', x], [name, int64(values)]]);

describe.each([false, true])('parameters %s', (onGpu) => {
  const name = onGpu ? 'q' : 'p';
  const readbacksExpected = onGpu ? 1 : 0;

  it.each([['ReduceSum', 13], ['ReduceMax', 18], ['ReduceMean', 18]] as const)('%s axes (opset %i)', async (op, opset) => {
    const bytes = parameterGraph(op, [3, 5, 7], [], { keepdims: 0 }, opset, onGpu);
    const shape = [3, 5, 7];
    const readbacks = await checkRuns(bytes, [[1], [0, -1], [2], [0, -1]].map((axes) => feeds(randomTensor(shape), name, axes)));
    expect(readbacks).toEqual([readbacksExpected, readbacksExpected, readbacksExpected, readbacksExpected]);
  });

  it('Slice starts', async () => {
    const bytes = parameterGraph('Slice', [6, 9], ['ends', 'axes'], {}, 13, onGpu, [['ends', int64([6, 8])], ['axes', int64([0, 1])]]);
    const readbacks = await checkRuns(bytes, [[1, 2], [4, -3], [0, 0], [1, 2]].map((starts) => feeds(randomTensor([6, 9]), name, starts)));
    expect(readbacks.every((count) => count === readbacksExpected)).toBe(true);
  });

  it('Tile repeats (zero included)', async () => {
    const bytes = parameterGraph('Tile', [3, 4], [], {}, 13, onGpu);
    await checkRuns(bytes, [[2, 3], [1, 1], [0, 2], [2, 3]].map((repeats) => feeds(randomTensor([3, 4]), name, repeats)));
  });

  it('Expand shape', async () => {
    const bytes = parameterGraph('Expand', [3, 1], [], {}, 13, onGpu);
    await checkRuns(bytes, [[2, 3, 5], [3, 1], [4, 1, 1], [2, 3, 5]].map((target) => feeds(randomTensor([3, 1]), name, target)));
  });

  it('Reshape shape (an alias: no dispatch, only a new shape)', async () => {
    const bytes = parameterGraph('Reshape', [4, 6], [], {}, 14, onGpu);
    await checkRuns(bytes, [[3, 8], [-1, 2], [24], [2, 3, 4]].map((shape) => feeds(randomTensor([4, 6]), name, shape)));
  });

  it('Pad pads (negative included)', async () => {
    const bytes = parameterGraph('Pad', [4, 5], [], {}, 13, onGpu);
    await checkRuns(bytes, [[1, 2, 0, 3], [0, 0, 0, 0], [-1, 1, 2, -2]].map((pads) => feeds(randomTensor([4, 5]), name, pads)));
  });
});

describe('values computed on the GPU from data', () => {
  it('Tile repeats from a float tensor: Cast(Ceil(Abs(r) * 3)), cached per value', async () => {
    const bytes = new GraphBuilder('tile_from_data').input('x', 'FP32', [2, 3]).input('r', 'FP32', [2])
      .initializer('three', 'FP32', [], Float32Array.of(3))
      .node('Abs', ['r'], ['a']).node('Mul', ['a', 'three'], ['m']).node('Ceil', ['m'], ['c']).node('Cast', ['c'], ['repeats'], { to: 7 })
      .node('Tile', ['x', 'repeats'], ['t']).node('Relu', ['t'], ['y'])
      .output('y', 'FP32', [-1, -1]).toBytes({ opset: 13 });
    const r = (values: number[]): HostTensor => ({ datatype: 'FP32', shape: [2], data: Float32Array.from(values) });
    const runs = [[0.5, 0.9], [0.2, 0.1], [0.5, 0.9]].map((values) => new Map([['x', randomTensor([2, 3])], ['r', r(values)]]));
    expect(await checkRuns(bytes, runs)).toEqual([1, 1, 1]);
  });

  it('two read-backs in sequence: a reduction over computed axes, then a Tile of computed repeats', async () => {
    const bytes = new GraphBuilder('two_cuts').input('x', 'FP32', [3, 4, 5]).input('axes_in', 'INT64', [1]).input('reps_in', 'INT64', [2])
      .initializer('zero', 'INT64', [1], BigInt64Array.of(0n))
      .node('Add', ['axes_in', 'zero'], ['axes']).node('ReduceSum', ['x', 'axes'], ['s'], { keepdims: 0 })
      .node('Shape', ['s'], ['shape_s']).node('Add', ['reps_in', 'zero'], ['reps']).node('Tile', ['s', 'reps'], ['t'])
      .node('Sigmoid', ['t'], ['y']).output('y', 'FP32', [-1, -1]).output('shape_s', 'INT64', [2]).toBytes({ opset: 13 });
    const runs = [[[1], [2, 1]], [[0], [1, 3]]].map(([axes, reps]) => new Map<string, HostTensor>([
      ['x', randomTensor([3, 4, 5])], ['axes_in', int64(axes)], ['reps_in', int64(reps)],
    ]));
    // Both values are read back together: the Tile's repeats are computed before the reduction needs its axes.
    expect(await checkRuns(bytes, runs)).toEqual([1, 1]);
  });

  it('Range with a limit from the request feeds a GPU step', async () => {
    const bytes = new GraphBuilder('range_input').input('limit', 'FP32', []).initializer('start', 'FP32', [], Float32Array.of(0.5))
      .initializer('delta', 'FP32', [], Float32Array.of(1.5)).node('Range', ['start', 'limit', 'delta'], ['r']).node('Sigmoid', ['r'], ['y'])
      .output('y', 'FP32', [-1]).toBytes({ opset: 13 });
    const limit = (value: number): HostTensor => ({ datatype: 'FP32', shape: [], data: Float32Array.of(value) });
    expect(await checkRuns(bytes, [7, 2, 0, 7].map((value) => new Map([['limit', limit(value)]])))).toEqual([0, 0, 0, 0]);
  });

  it('ConstantOfShape of a computed shape runs on the host after the read-back', async () => {
    const bytes = new GraphBuilder('constant_of_computed').input('x', 'FP32', [2, 3]).input('dims', 'INT64', [2])
      .initializer('one', 'INT64', [1], BigInt64Array.of(1n))
      .node('Add', ['dims', 'one'], ['shape']).node('ConstantOfShape', ['shape'], ['c'], {})
      .node('Add', ['c', 'x'], ['y']).output('y', 'FP32', [-1, -1]).toBytes({ opset: 13 });
    const runs = [[1, 2], [0, 2], [1, 0]].map((dims) => new Map<string, HostTensor>([['x', randomTensor([2, 3])], ['dims', int64(dims)]]));
    expect(await checkRuns(bytes, runs)).toEqual([1, 1, 1]);
  });
});
