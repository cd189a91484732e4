/**
 * Outputs whose shapes depend on values, against onnxruntime on fresh random inputs. NonZero runs
 * on the GPU and its dims are read back (as a graph output, and read by later GPU steps, which
 * are planned for the count); Unique runs on the host, reading back an input computed on the GPU.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, fp32 } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, foldedModel, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** About `zeros` of the elements exactly zero, the rest random. */
function sparse(shape: number[], zeros = 0.5): HostTensor {
  const tensor = randomTensor(shape);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) if (Math.random() < zeros) data[index] = Math.random() < 0.5 ? 0 : -0;
  return tensor;
}

/** Small integers as floats: many repeated values. */
const repeated = (shape: number[]): HostTensor => ({ datatype: 'FP32', shape, data: Float32Array.from(randomIntegers(shape, -3, 3, 'INT32').data as Int32Array) });

describe('NonZero', () => {
  const oneNode = (shape: number[], datatype: 'FP32' | 'INT64' | 'BOOL' = 'FP32') =>
    unrankedOutputs(new GraphBuilder('nonzero').input('x', datatype, shape).node('NonZero', ['x'], ['y'], {}, 'nonzero_under_test').output('y', 'INT64', []), 13);

  it.each([[[7]], [[3, 5]], [[2, 3, 4]], [[2, 1, 3, 1, 2]], [[3, 700]], [[0, 3]]])('%j, about half zero, as a graph output', async (shape) => {
    const readbacks = await checkRuns(gpu, oneNode(shape), [sparse(shape), sparse(shape, 0), sparse(shape, 1), sparse(shape, 0.9)].map((x) => new Map([['x', x]])));
    // The graph output's dims are read back before it is copied at its real size.
    expect(readbacks).toEqual([1, 1, 1, 1]);
  });
  it('BOOL and INT64 inputs (opset 9)', async () => {
    const bools = (shape: number[]): HostTensor => ({ datatype: 'BOOL', shape, data: Uint8Array.from({ length: shape[0] * shape[1] }, () => (Math.random() < 0.5 ? 1 : 0)) });
    await checkRuns(gpu, oneNode([4, 6], 'BOOL'), [new Map([['x', bools([4, 6])]]), new Map([['x', bools([4, 6])]])]);
    await checkRuns(gpu, oneNode([5, 3], 'INT64'), [new Map([['x', randomIntegers([5, 3], -1, 1)]])]);
  });
  it('read by later GPU steps: Transpose, then GatherND of the data at the non-zero coordinates', async () => {
    const bytes = unrankedOutputs(new GraphBuilder('nonzero_gather').input('x', 'FP32', [4, 5])
      .node('NonZero', ['x'], ['nz']).node('Transpose', ['nz'], ['coords'], { perm: [1, 0] })
      .node('GatherND', ['x', 'coords'], ['picked']).node('Neg', ['picked'], ['y']).output('y', 'FP32', []).output('coords', 'INT64', []), 13);
    const readbacks = await checkRuns(gpu, bytes, [0.3, 0.8, 0.3, 1].map((zeros) => new Map([['x', sparse([4, 5], zeros)]])));
    expect(readbacks).toEqual([1, 1, 1, 1]);
  });
  it('folded on the host', () =>
    checkModelAgainstOrt(gpu, new GraphBuilder('nonzero_folded').input('x', 'FP32', [1, 2])
      .initializer('c', 'FP32', [2, 3], Float32Array.of(0, 1.5, 0, -2, 0, 3)).node('NonZero', ['c'], ['nz']).node('Cast', ['nz'], ['f'], { to: 1 })
      .node('MatMul', ['x', 'f'], ['y'], {}).output('y', 'FP32', [1, 3]).toBytes({ opset: 13 }), [{ name: 'x', shape: [1, 2] }], [{ name: 'y', shape: [1, 3] }]));
});

describe('Unique', () => {
  const unique = (shape: number[], attributes: Record<string, number>, onGpu: boolean) => {
    const graph = new GraphBuilder('unique').input('x', 'FP32', shape);
    if (onGpu) graph.node('Relu', ['x'], ['r']);
    graph.node('Unique', [onGpu ? 'r' : 'x'], ['y', 'indices', 'inverse', 'counts'], attributes, 'unique_under_test');
    for (const name of ['y', 'indices', 'inverse', 'counts']) graph.output(name, name === 'y' ? 'FP32' : 'INT64', []);
    return unrankedOutputs(graph, 11);
  };
  const cases: Array<[shape: number[], attributes: Record<string, number>]> = [
    [[20], {}],
    [[20], { sorted: 0 }],
    [[4, 6], {}],
    [[6, 2], { axis: 0 }],
    [[3, 7], { axis: 1, sorted: 0 }],
    [[2, 5, 2], { axis: -2 }],
  ];
  it.each(cases)('%j with %j, from the request and computed on the GPU (read back)', async (shape, attributes) => {
    const runs = () => [0, 1].map(() => new Map([['x', repeated(shape)]]));
    expect(await checkRuns(gpu, unique(shape, attributes, false), runs())).toEqual([0, 0]);
    expect(await checkRuns(gpu, unique(shape, attributes, true), runs())).toEqual([1, 1]);
  });
  it('its values feed a GPU step', async () => {
    const bytes = unrankedOutputs(new GraphBuilder('unique_then_gpu').input('x', 'FP32', [12]).node('Abs', ['x'], ['a'])
      .node('Unique', ['a'], ['u']).node('Sigmoid', ['u'], ['y']).output('y', 'FP32', []), 11);
    await checkRuns(gpu, bytes, [new Map([['x', repeated([12])]]), new Map([['x', repeated([12])]])]);
  });
  it('folded on the host', () =>
    checkModelAgainstOrt(gpu, foldedModel('Unique', [fp32([3, 1, 3, 2, 1])], [3], {}, 11), [{ name: 'x', shape: [3] }], [{ name: 'y', shape: [3] }]));
});
