/**
 * ArgMax / ArgMin and CumSum against onnxruntime on fresh random inputs: every axis, keepdims,
 * ties (first index, and the last with select_last_index from opset 12), FP32, INT64 and INT32
 * inputs, long rows, empty tensors; CumSum's exclusive and reverse, its axis as INT64 or INT32,
 * opsets 11 / 13 and 11 / 14; and the CPU implementations folding constant inputs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { buildOneNodeModel, checkModelAgainstOrt, checkOneNode, type InputSpec } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** Whole numbers in [-3, 3] as FP32: rows full of ties. */
const ties = (shape: number[]): HostTensor => {
  const integers = randomIntegers(shape, -3, 3, 'INT32');
  return { datatype: 'FP32', shape, data: Float32Array.from(integers.data as Int32Array) };
};

function input(shape: number[], datatype: Datatype, fill?: InputSpec['fill']): InputSpec {
  if (datatype === 'FP32') return { name: 'x', shape, fill };
  return { name: 'x', shape, datatype, fill: (dims) => randomIntegers(dims, -4, 4, datatype as 'INT64' | 'INT32') };
}

const reducedShape = (shape: number[], axis: number, keepdims: number) => {
  const normalized = (axis + shape.length) % shape.length;
  return keepdims ? shape.map((dim, index) => (index === normalized ? 1 : dim)) : shape.filter((_, index) => index !== normalized);
};

for (const op of ['ArgMax', 'ArgMin']) {
  describe(op, () => {
    const cases: Array<{ shape: number[]; axis: number; keepdims: number; fill?: InputSpec['fill'] }> = [
      { shape: [3, 5, 7], axis: 0, keepdims: 1 },
      { shape: [3, 5, 7], axis: 1, keepdims: 0, fill: ties },
      { shape: [3, 5, 7], axis: -1, keepdims: 1, fill: ties },
      { shape: [2, 1000], axis: 1, keepdims: 0 },
      { shape: [0, 5], axis: 1, keepdims: 1 },
    ];
    for (const opset of [11, 13]) {
      for (const { shape, axis, keepdims, fill } of cases) {
        for (const selectLast of opset >= 12 ? [0, 1] : [undefined]) {
          const attributes: Record<string, AttributeValue> = { axis, keepdims };
          if (selectLast !== undefined) attributes.select_last_index = selectLast;
          it(`opset ${opset}: [${shape}] ${JSON.stringify(attributes)}${fill ? ', ties' : ''}`, () => checkOneNode(gpu, {
            op, inputs: [input(shape, 'FP32', fill)], outputs: [{ name: 'y', shape: reducedShape(shape, axis, keepdims), datatype: 'INT64' }], attributes, opset,
          }));
        }
      }
    }
    for (const datatype of ['INT64', 'INT32'] as const) {
      it(`on ${datatype}, ties included`, () => checkOneNode(gpu, {
        op, inputs: [input([4, 6], datatype)], outputs: [{ name: 'y', shape: [4, 1], datatype: 'INT64' }], attributes: { axis: 1, select_last_index: 1 }, opset: 13,
      }));
    }
    it('refuses an empty axis (there is no index to return)', async () => {
      const model = await compileOnnxModel(gpu, buildOneNodeModel({
        op, inputs: [['x', [-1, 3]]], outputs: [{ name: 'y', shape: [1, 3], datatype: 'INT64' }], attributes: { axis: 0 }, opset: 13,
      }), { isolate: false });
      try {
        const error = await model.run(new Map([['x', randomTensor([0, 3])]])).catch((thrown: unknown) => thrown);
        expect(error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
      } finally {
        model.dispose();
      }
    });
    it('folds a constant input on the host', async () => {
      const bytes = new GraphBuilder(`folded_${op.toLowerCase()}`).input('x', 'INT64', [3]).initializer('data', 'FP32', [3, 4], ties([3, 4]).data)
        .node(op, ['data'], ['folded'], { axis: 1, keepdims: 0, select_last_index: 1 }).node('Add', ['x', 'folded'], ['y'])
        .output('y', 'INT64', [3]).toBytes({ opset: 13 });
      await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [3], datatype: 'INT64', fill: (shape) => randomIntegers(shape, 0, 9) }], [{ name: 'y', shape: [3] }]);
    });
  });
}

describe('CumSum', () => {
  const axisTensor = (axis: number, datatype: 'INT64' | 'INT32'): HostTensor =>
    ({ datatype, shape: [], data: datatype === 'INT64' ? BigInt64Array.of(BigInt(axis)) : Int32Array.of(axis) });
  const cases: Array<{ shape: number[]; axis: number }> = [
    { shape: [3, 5, 7], axis: 0 }, { shape: [3, 5, 7], axis: 1 }, { shape: [3, 5, 7], axis: -1 }, { shape: [2, 301], axis: 1 }, { shape: [0, 4], axis: 1 },
  ];
  for (const opset of [11, 14]) {
    for (const { shape, axis } of cases) {
      for (const [exclusive, reverse] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
        it(`opset ${opset}: [${shape}] axis ${axis}, exclusive ${exclusive}, reverse ${reverse}`, () => checkOneNode(gpu, {
          op: 'CumSum', inputs: [['x', shape]], nodeInputs: ['x', 'axis'], initializers: [{ name: 'axis', tensor: axisTensor(axis, opset === 11 ? 'INT32' : 'INT64') }],
          output: shape, attributes: { exclusive, reverse }, opset,
        }));
      }
    }
  }
  for (const datatype of ['INT64', 'INT32'] as const) {
    it(`on ${datatype}`, () => checkOneNode(gpu, {
      op: 'CumSum', inputs: [input([4, 9], datatype)], nodeInputs: ['x', 'axis'], initializers: [{ name: 'axis', tensor: axisTensor(1, 'INT64') }],
      outputs: [{ name: 'y', shape: [4, 9], datatype }], attributes: { reverse: 1 }, opset: 14,
    }));
  }
  it('folds a constant input on the host', async () => {
    const shape = [3, 4];
    const bytes = new GraphBuilder('folded_cumsum').input('x', 'FP32', shape).initializer('data', 'FP32', shape, randomTensor(shape).data)
      .initializer('axis', 'INT64', [], BigInt64Array.of(0n)).node('CumSum', ['data', 'axis'], ['folded'], { exclusive: 1 }).node('Add', ['x', 'folded'], ['y'])
      .output('y', 'FP32', shape).toBytes({ opset: 14 });
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape }], [{ name: 'y', shape }]);
  });
});
