/**
 * The CPU implementations that fold constants: outputs are typed arrays of the output's datatype,
 * values are right, and every output is reserved with the allocator before it is allocated.
 */
import { describe, expect, it } from 'vitest';
import { operatorSpec, type CpuAllocator } from '../../../services/executor/ops/index.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../../services/onnx/model.ts';
import { GraphBuilder, tensorAttribute } from '../../../services/onnx/builder.ts';

const int64s = (...values: number[]): HostTensor => ({ datatype: 'INT64', shape: [values.length], data: BigInt64Array.from(values, BigInt) });
const floats = (shape: number[], ...values: number[]): HostTensor => ({ datatype: 'FP32', shape, data: Float32Array.from(values) });

/** The node `opType` as the builder writes it. */
function nodeOf(opType: string, inputs: number, attributes: Parameters<GraphBuilder['node']>[3] = {}): NodeProto {
  const model = new GraphBuilder().node(opType, Array.from({ length: inputs }, (_, index) => `i${index}`), ['y'], attributes, 'n').toModel();
  return model.graph!.node[0];
}

/** Runs the CPU implementation, recording what it reserved. */
function fold(opType: string, inputs: HostTensor[], outputType: Datatype, attributes: Parameters<GraphBuilder['node']>[3] = {}) {
  const node = nodeOf(opType, inputs.length, attributes);
  const reserved: Array<{ shape: number[]; datatype: Datatype }> = [];
  const allocator: CpuAllocator = { reserve: (_, shape, datatype) => { reserved.push({ shape: [...shape], datatype }); } };
  const [output] = operatorSpec(node)!.cpu!({
    node, opset: 17, outputTypes: [outputType], allocator, inputs: inputs.map((tensor) => ({ shape: tensor.shape, value: tensor })),
  });
  return { output, reserved };
}

describe('CPU folding', () => {
  it('ConstantOfShape fills a typed array of the value attribute\'s type', () => {
    const { output, reserved } = fold('ConstantOfShape', [int64s(2, 3)], 'INT32', { value: tensorAttribute('INT32', [1], Int32Array.of(7)) });
    expect(output.data).toBeInstanceOf(Int32Array);
    expect(Array.from(output.data as Int32Array)).toEqual([7, 7, 7, 7, 7, 7]);
    expect(reserved).toEqual([{ shape: [2, 3], datatype: 'INT32' }]);
  });

  it('Tile, Expand, Pad and Concat keep the input datatype, INT64 included', () => {
    const tile = fold('Tile', [int64s(1, 2), int64s(2)], 'INT64');
    expect(tile.output.data).toEqual(BigInt64Array.of(1n, 2n, 1n, 2n));
    const expand = fold('Expand', [floats([2, 1], 1, 2), int64s(2, 3)], 'FP32');
    expect(expand.output.data).toEqual(Float32Array.of(1, 1, 1, 2, 2, 2));
    const pad = fold('Pad', [floats([2], 1, 2), int64s(1, 2), floats([], 9)], 'FP32');
    expect(pad.output.data).toEqual(Float32Array.of(9, 1, 2, 9, 9));
    const edge = fold('Pad', [floats([2], 1, 2), int64s(2, 1)], 'FP32', { mode: 'edge' });
    expect(edge.output.data).toEqual(Float32Array.of(1, 1, 1, 2, 2));
    const concat = fold('Concat', [floats([1, 2], 1, 2), floats([1, 1], 3)], 'FP32', { axis: 1 });
    expect(concat.output).toEqual({ datatype: 'FP32', shape: [1, 3], data: Float32Array.of(1, 2, 3) });
    expect([tile, expand, pad, concat].map((result) => result.reserved[0].shape)).toEqual([[4], [2, 3], [5], [1, 3]]);
  });

  it('Gather and Range give typed arrays', () => {
    const gather = fold('Gather', [floats([3, 2], 1, 2, 3, 4, 5, 6), int64s(2, -3)], 'FP32', { axis: 0 });
    expect(gather.output).toEqual({ datatype: 'FP32', shape: [2, 2], data: Float32Array.of(5, 6, 1, 2) });
    const range = fold('Range', [int64s(1), int64s(10), int64s(3)].map((tensor) => ({ ...tensor, shape: [] })), 'INT64');
    expect(range.output.data).toEqual(BigInt64Array.of(1n, 4n, 7n));
    expect(range.reserved).toEqual([{ shape: [3], datatype: 'INT64' }]);
  });

  it('reserves before allocating: a refusing allocator stops a 1e12-element fill at once', () => {
    const node = nodeOf('ConstantOfShape', 1);
    const refuse: CpuAllocator = { reserve: (_, shape) => { throw new Error(`refused [${shape.join(', ')}]`); } };
    const started = performance.now();
    expect(() => operatorSpec(node)!.cpu!({
      node, opset: 17, outputTypes: ['FP32'], allocator: refuse, inputs: [{ shape: [2], value: int64s(1e6, 1e6) }],
    })).toThrow('refused [1000000, 1000000]');
    expect(performance.now() - started).toBeLessThan(100);
  });
});
