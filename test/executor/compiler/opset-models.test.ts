/**
 * Models at every opset from 22 to 28 whose operators did not change beyond their element types
 * load and match onnxruntime's CPU provider on fresh inputs; old forms (BatchNormalization's
 * is_test, Cast-1's type name, Concat-1's default axis, Pad-1's paddings) load at their opsets
 * and match the modern form; a version we do not cover is refused at load, naming it.
 * onnxruntime-node knows opsets up to 26: at 27 and 28 the reference is the same graph at 26.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { ModelProto } from '../../../services/protocol/generated/onnx/onnx.ts';
import { compileError } from '../numerics/one-node.ts';
import { expectClose, randomTensor, runOrt } from '../numerics/ort-reference.ts';

/** The newest opset onnxruntime-node 1.30 loads. */
const ORT_MAX_OPSET = 26;

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const int64s = (values: number[]) => BigInt64Array.from(values, BigInt);

/**
 * Dense layer, Reshape, Transpose, Softmax and ReduceSum on `x`; Conv, MaxPool,
 * GlobalAveragePool, Flatten, Pad, Unsqueeze and Squeeze on `img`; Shape, Gather, Range and Cast
 * on the host; a round trip through FP64. Every one of these operators keeps its semantics from
 * 21 to 28 (some gained element types on the way).
 */
function sweepModel(): GraphBuilder {
  const graph = new GraphBuilder('opset_sweep').input('x', 'FP32', [-1, 8]).input('img', 'FP32', [1, 2, 5, 5]);
  graph.initializer('w', 'FP32', [8, 6], randomTensor([8, 6], 0.5).data);
  graph.initializer('b', 'FP32', [6], randomTensor([6], 0.5).data);
  graph.initializer('to_3d', 'INT64', [3], int64s([-1, 2, 3]));
  graph.initializer('axis_1', 'INT64', [1], int64s([1]));
  graph.initializer('axis_0', 'INT64', [1], int64s([0]));
  graph.initializer('wc', 'FP32', [3, 2, 3, 3], randomTensor([3, 2, 3, 3], 0.4).data);
  graph.initializer('pads', 'INT64', [4], int64s([0, 1, 0, 1]));
  graph.initializer('zero', 'INT64', [], int64s([0]));
  graph.initializer('one', 'INT64', [], int64s([1]));
  return graph
    .node('MatMul', ['x', 'w'], ['h']).node('Add', ['h', 'b'], ['h2']).node('Relu', ['h2'], ['r'])
    .node('Reshape', ['r', 'to_3d'], ['r3']).node('Transpose', ['r3'], ['t'], { perm: [0, 2, 1] })
    .node('Softmax', ['t'], ['sm'], { axis: -1 }).node('ReduceSum', ['sm', 'axis_1'], ['y1'], { keepdims: 0 })
    .node('Conv', ['img', 'wc'], ['c'], { pads: [1, 1, 1, 1], kernel_shape: [3, 3] })
    .node('MaxPool', ['c'], ['p'], { kernel_shape: [2, 2], strides: [2, 2] })
    .node('GlobalAveragePool', ['p'], ['g']).node('Flatten', ['g'], ['f'])
    .node('Pad', ['f', 'pads'], ['padded']).node('Unsqueeze', ['padded', 'axis_0'], ['u']).node('Squeeze', ['u', 'axis_0'], ['y2'])
    .node('Shape', ['x'], ['shape']).node('Gather', ['shape', 'zero'], ['rows'], { axis: 0 })
    .node('Range', ['zero', 'rows', 'one'], ['indices']).node('Cast', ['indices'], ['y3'], { to: 1 })
    .node('Cast', ['y1'], ['double'], { to: 11 }).node('Cast', ['double'], ['y4'], { to: 1 })
    .output('y1', 'FP32', [-1, 2]).output('y2', 'FP32', [1, 5]).output('y3', 'FP32', [-1]).output('y4', 'FP32', [-1, 2]);
}

/** Ours on `ours` against onnxruntime on `reference`, both on the same fresh inputs. */
async function expectSameAsOrt(ours: Uint8Array, reference: Uint8Array, inputs: () => Map<string, HostTensor>): Promise<void> {
  const model = await compileOnnxModel(gpu, ours, { isolate: false });
  try {
    for (let round = 0; round < 2; round++) {
      const feeds = inputs();
      const [result, expected] = await Promise.all([model.run(feeds), runOrt(reference, feeds)]);
      expect([...result.outputs.keys()].sort()).toEqual([...expected.keys()].sort());
      for (const [name, tensor] of expected) expectClose(name, result.outputs.get(name), tensor);
    }
  } finally {
    model.dispose();
  }
}

describe('opsets 22 to 28', () => {
  const sweepInputs = (rows: number) => () => new Map([['x', randomTensor([rows, 8])], ['img', randomTensor([1, 2, 5, 5])]]);

  it.each([22, 23, 24, 25, 26, 27, 28])('a model at opset %i loads and matches onnxruntime', async (opset) => {
    const graph = sweepModel();
    await expectSameAsOrt(graph.toBytes({ opset }), graph.toBytes({ opset: Math.min(opset, ORT_MAX_OPSET) }), sweepInputs(3 + (opset % 4)));
  });

  it('refuses opset 29 at load, naming it', async () => {
    const error = await compileError(gpu, sweepModel().toBytes({ opset: 29 }));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toBe('the model imports ONNX opset 29; this executor knows the operators up to opset 28');
  });
});

describe('old forms', () => {
  /** One BatchNormalization over [N, 3, 4, 5] with fresh statistics (variances positive). */
  function batchNorm(attributes: Record<string, AttributeValue>): GraphBuilder {
    const graph = new GraphBuilder('bn').input('x', 'FP32', [-1, 3, 4, 5]);
    graph.initializer('scale', 'FP32', [3], randomTensor([3], 2).data);
    graph.initializer('bias', 'FP32', [3], randomTensor([3], 1).data);
    graph.initializer('mean', 'FP32', [3], randomTensor([3], 1).data);
    graph.initializer('var', 'FP32', [3], Float32Array.from(randomTensor([3], 1).data as Float32Array, (value) => 0.5 + Math.abs(value)));
    return graph.node('BatchNormalization', ['x', 'scale', 'bias', 'mean', 'var'], ['y'], attributes, 'bn').output('y', 'FP32', [-1, 3, 4, 5]);
  }

  it('BatchNormalization with is_test at opset 6 (and consumed_inputs at 5) matches BatchNormalization-7', async () => {
    const inputs = () => new Map([['x', randomTensor([2, 3, 4, 5], 3)]]);
    // The same statistics in each pair: one builder, two opsets.
    const opset6 = batchNorm({ epsilon: 0.001, is_test: 1 });
    await expectSameAsOrt(opset6.toBytes({ opset: 6 }), rebuiltAt7(opset6), inputs);
    const opset5 = batchNorm({ epsilon: 0.001, is_test: 1, consumed_inputs: [0, 0, 0, 1, 1], spatial: 1 });
    await expectSameAsOrt(opset5.toBytes({ opset: 5 }), rebuiltAt7(opset5), inputs);
  });

  it('refuses BatchNormalization in training mode at opset 6 (is_test absent), naming its version', async () => {
    const error = await compileError(gpu, batchNorm({}).toBytes({ opset: 6 }));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("operator 'BatchNormalization' version 6 (node 'bn', opset 6) is not supported: is_test=0");
  });

  it("Cast-1's type name, Concat-1's default axis and Pad-1's paddings match their modern forms", async () => {
    const build = (legacy: boolean) => new GraphBuilder('old_forms').input('a', 'INT64', [2, 3]).input('b', 'FP32', [2, 4])
      .node('Cast', ['a'], ['af'], { to: legacy ? 'FLOAT' : 1 })
      .node('Concat', ['af', 'b'], ['joined'], legacy ? {} : { axis: 1 })
      .node('Pad', ['joined'], ['y'], legacy ? { paddings: [1, 0, 0, 2], mode: 'constant', value: 0.5 } : { pads: [1, 0, 0, 2], mode: 'constant', value: 0.5 })
      .output('y', 'FP32', [3, 9]);
    const inputs = () => new Map<string, HostTensor>([
      ['a', { datatype: 'INT64', shape: [2, 3], data: BigInt64Array.from({ length: 6 }, () => BigInt(Math.floor(Math.random() * 200) - 100)) }],
      ['b', randomTensor([2, 4])],
    ]);
    await expectSameAsOrt(build(true).toBytes({ opset: 1 }), build(false).toBytes({ opset: 7 }), inputs);
  });

  it('refuses Tile-1 at opset 5, naming its version and what changed', async () => {
    const graph = new GraphBuilder('tile').input('x', 'FP32', [2, 3]);
    graph.initializer('tiles', 'INT64', [], int64s([2])).initializer('axis', 'INT64', [], int64s([1]));
    const error = await compileError(gpu, graph.node('Tile', ['x', 'tiles', 'axis'], ['y'], {}, 'tile').output('y', 'FP32', [2, 6]).toBytes({ opset: 5 }));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toMatch(/^operator 'Tile' version 1 \(node 'tile', opset 5\) is not supported: Tile-1 repeated along one axis/);
  });
});

/** The opset-7 form of an old BatchNormalization model: the same graph without is_test / consumed_inputs. */
function rebuiltAt7(graph: GraphBuilder): Uint8Array {
  const model = graph.toModel({ opset: 7 });
  for (const node of model.graph!.node) node.attribute = node.attribute.filter((attribute) => !['is_test', 'consumed_inputs'].includes(attribute.name));
  return ModelProto.encode(model).finish();
}
