/**
 * Operators that generate tensors (Shape, Size, Constant, ConstantOfShape, Range) feeding GPU
 * kernels, shape subgraphs evaluated on the CPU once per input shape, and what is refused, against
 * onnxruntime on fresh random inputs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileGraph } from '../../../services/executor/compiler/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { float, floats, GraphBuilder, tensorAttribute, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import { decodeModel, type HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, expectRefused, fp32, int64 } from './one-node.ts';
import { expectMatchesOrt, randomTensor } from './ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());


describe('Shape', () => {
  it.each<[number | undefined, number | undefined, number[]]>([[undefined, undefined, [4]], [1, undefined, [3]], [-3, -1, [2]], [0, 10, [4]]])('start %s, end %s', async (start, end, outShape) => {
    const attributes: Record<string, AttributeValue> = {};
    if (start !== undefined) attributes.start = start;
    if (end !== undefined) attributes.end = end;
    const bytes = new GraphBuilder('shape').input('x', 'FP32', [2, 3, 5, 7]).node('Shape', ['x'], ['y'], attributes).output('y', 'INT64', outShape).toBytes({ opset: 15 });
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [2, 3, 5, 7] }], [{ name: 'y', shape: outShape }]);
  });
});

describe('Size', () => {
  it('of an input, returned and used by a kernel', async () => {
    const bytes = new GraphBuilder('size').input('x', 'FP32', [3, 'n'])
      .node('Size', ['x'], ['count']).node('Cast', ['count'], ['count_f'], { to: 1 }).node('Div', ['x', 'count_f'], ['y'])
      .output('y', 'FP32', [3, 'n']).output('count', 'INT64', []).toBytes();
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      for (const n of [1, 7]) await expectMatchesOrt(model, bytes, new Map([['x', randomTensor([3, n])]]));
    } finally {
      model.dispose();
    }
  });
});

describe('Constant', () => {
  it('outputs of every attribute kind, and a Constant feeding a kernel', async () => {
    const bytes = new GraphBuilder('constants')
      .input('x', 'FP32', [2, 3])
      .node('Constant', [], ['t'], { value: tensorAttribute('FP32', [2, 3], randomTensor([2, 3]).data) })
      .node('Constant', [], ['f'], { value_float: float(Math.random()) })
      .node('Constant', [], ['fs'], { value_floats: floats([Math.random(), -Math.random(), 0.5]) })
      .node('Constant', [], ['i'], { value_int: 7 })
      .node('Constant', [], ['is'], { value_ints: [3, -1, 4] })
      .node('Mul', ['x', 't'], ['y'])
      .output('y', 'FP32', [2, 3]).output('t', 'FP32', [2, 3]).output('f', 'FP32', []).output('fs', 'FP32', [3])
      .output('i', 'INT64', []).output('is', 'INT64', [3])
      .toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [2, 3] }], [{ name: 'y', shape: [2, 3] }]);
  });
});

describe('ConstantOfShape', () => {
  it.each<[string, HostTensor | undefined, Datatype]>([
    ['zeros by default', undefined, 'FP32'],
    ['a float value', fp32([Math.random() * 4 - 2], [1]), 'FP32'],
    ['an INT64 value', int64([-3], [1]), 'INT64'],
  ])('of a Shape: %s, used by a kernel and returned', async (_, value, datatype) => {
    const graph = new GraphBuilder('constant_of_shape').input('x', 'FP32', [3, 5])
      .node('Shape', ['x'], ['s'])
      .node('ConstantOfShape', ['s'], ['c'], value ? { value: tensorAttribute(value.datatype, value.shape, value.data) } : {});
    if (datatype === 'FP32') graph.node('Add', ['x', 'c'], ['y']);
    else graph.node('Cast', ['c'], ['cf'], { to: 1 }).node('Add', ['x', 'cf'], ['y']);
    const bytes = graph.output('y', 'FP32', [3, 5]).output('c', datatype, [3, 5]).toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [3, 5] }], [{ name: 'y', shape: [3, 5] }, { name: 'c', shape: [3, 5] }]);
  });
});

describe('Range', () => {
  it.each<[string, Datatype, number, number, number]>([
    ['FP32 ascending', 'FP32', Math.random() * 2 - 1, 7.3, 0.9],
    ['FP32 descending', 'FP32', 3.25, -4, -0.75],
    ['INT64 ascending', 'INT64', -3, 17, 4],
    ['INT64 descending', 'INT64', 10, -2, -3],
    ['INT64 empty', 'INT64', 5, 5, 1],
  ])('%s, folded at load', async (_, datatype, start, limit, delta) => {
    const count = Math.max(0, Math.ceil((limit - start) / delta));
    const scalar = (x: number) => (datatype === 'FP32' ? fp32([x], []) : int64([x], []));
    const graph = new GraphBuilder('range').input('x', 'FP32', [count]);
    for (const [name, x] of [['start', start], ['limit', limit], ['delta', delta]] as const) {
      const tensor = scalar(x);
      graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
    }
    graph.node('Range', ['start', 'limit', 'delta'], ['r']);
    if (datatype === 'FP32') graph.node('Add', ['x', 'r'], ['y']);
    else graph.node('Cast', ['r'], ['rf'], { to: 1 }).node('Add', ['x', 'rf'], ['y']);
    const bytes = graph.output('y', 'FP32', [count]).output('r', datatype, [count]).toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [count] }], [{ name: 'y', shape: [count] }, { name: 'r', shape: [count] }]);
  });

  it('with its limit from a Shape, evaluated per input shape', async () => {
    const bytes = new GraphBuilder('range_of_shape').input('x', 'FP32', ['batch', 'length'])
      .initializer('zero', 'INT64', [], BigInt64Array.of(0n)).initializer('one', 'INT64', [], BigInt64Array.of(1n))
      .initializer('axis', 'INT64', [], BigInt64Array.of(1n))
      .node('Shape', ['x'], ['s']).node('Gather', ['s', 'axis'], ['length'])
      .node('Range', ['zero', 'length', 'one'], ['positions']).node('Cast', ['positions'], ['pf'], { to: 1 })
      .node('Add', ['x', 'pf'], ['y'])
      .output('y', 'FP32', ['batch', 'length'])
      .toBytes();
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      for (const shape of [[2, 3], [4, 11], [1, 1]]) await expectMatchesOrt(model, bytes, new Map([['x', randomTensor(shape)]]));
    } finally {
      model.dispose();
    }
  });
});

describe('shape subgraphs run on the host', () => {
  it('Shape → Gather → Unsqueeze → Concat → Reshape: only the Relu after it dispatches', async () => {
    // x [batch, 12] → Reshape to [batch, 3, 4] with the target computed from x's own shape, the
    // way exporters write dynamic reshapes.
    const bytes = new GraphBuilder('dynamic_reshape')
      .input('x', 'FP32', ['batch', 12])
      .initializer('first', 'INT64', [], BigInt64Array.of(0n))
      .initializer('zero_axis', 'INT64', [1], BigInt64Array.of(0n))
      .initializer('tail', 'INT64', [2], BigInt64Array.of(3n, 4n))
      .node('Shape', ['x'], ['shape'], {}, 'shape')
      .node('Gather', ['shape', 'first'], ['batch_size'], { axis: 0 }, 'gather')
      .node('Unsqueeze', ['batch_size', 'zero_axis'], ['batch_1d'], {}, 'unsqueeze')
      .node('Concat', ['batch_1d', 'tail'], ['target'], { axis: 0 }, 'concat')
      .node('Reshape', ['x', 'target'], ['cube'], {}, 'reshape')
      .node('Relu', ['cube'], ['y'], {}, 'relu')
      .output('y', 'FP32', ['batch', 3, 4])
      .output('target', 'INT64', [3])
      .toBytes({ opset: 13 });
    const graph = compileGraph(decodeModel(bytes), { precision: 'fp32', traits: { gemmAlgorithm: 'tiled' } });
    const byKind = (kind: string) => graph.steps.filter((step) => step.kind === kind).map((step) => step.node.opType);
    expect(byKind('host')).toEqual(['Shape', 'Gather', 'Unsqueeze', 'Concat']);
    expect(byKind('device')).toEqual(['Reshape', 'Relu']);
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      expect(model.stepCount).toBe(1);
      // Every batch size re-evaluates the subgraph: a target computed once would break the others.
      for (const batch of [2, 5, 1]) {
        const outputs = await expectMatchesOrt(model, bytes, new Map([['x', randomTensor([batch, 12])]]));
        expect(outputs.get('y')!.shape).toEqual([batch, 3, 4]);
      }
    } finally {
      model.dispose();
    }
  });

  it('shape arithmetic (Slice, integer Div, Cast, Sqrt) feeding GPU kernels', async () => {
    // The attention-style pattern: x [batch, seq, 12] split into 3 heads of 4 with the sizes
    // computed from x's shape, transposed, then scaled by 1 / sqrt(head size) computed from the
    // shape as a float.
    const bytes = new GraphBuilder('heads')
      .input('x', 'FP32', ['batch', 'seq', 12])
      .initializer('zero', 'INT64', [1], BigInt64Array.of(0n)).initializer('two', 'INT64', [1], BigInt64Array.of(2n))
      .initializer('last', 'INT64', [], BigInt64Array.of(2n)).initializer('heads', 'INT64', [1], BigInt64Array.of(3n))
      .initializer('axis0', 'INT64', [1], BigInt64Array.of(0n))
      .node('Shape', ['x'], ['shape'])
      .node('Slice', ['shape', 'zero', 'two'], ['batch_seq'])
      .node('Gather', ['shape', 'last'], ['width'])
      .node('Unsqueeze', ['width', 'axis0'], ['width_1d'])
      .node('Div', ['width_1d', 'heads'], ['head_size'])
      .node('Concat', ['batch_seq', 'heads', 'head_size'], ['target'], { axis: 0 })
      .node('Reshape', ['x', 'target'], ['split'])
      .node('Transpose', ['split'], ['by_head'], { perm: [0, 2, 1, 3] })
      .node('Cast', ['head_size'], ['head_size_f'], { to: 1 })
      .node('Sqrt', ['head_size_f'], ['scale'])
      .node('Div', ['by_head', 'scale'], ['y'])
      .output('y', 'FP32', ['batch', 3, 'seq', 4])
      .toBytes({ opset: 13 });
    const graph = compileGraph(decodeModel(bytes), { precision: 'fp32', traits: { gemmAlgorithm: 'tiled' } });
    expect(graph.steps.filter((step) => step.kind === 'device').map((step) => step.node.opType)).toEqual(['Reshape', 'Transpose', 'Div']);
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      expect(model.stepCount).toBe(2);
      for (const [batch, seq] of [[2, 5], [1, 1], [3, 7]]) {
        await expectMatchesOrt(model, bytes, new Map([['x', randomTensor([batch, seq, 12])]]));
      }
    } finally {
      model.dispose();
    }
  });
});

describe('refusals', () => {
  it('an unsupported operator (Bernoulli) names the operator and node', () =>
    expectRefused(gpu, {
      op: 'Bernoulli', inputs: [['x', [1, 1, 3, 4]]], outputs: [{ name: 'y', shape: [1, 1, 3, 4], datatype: 'FP32' }], nodeName: 'sample_mask',
    }, 'is not supported'));
});
