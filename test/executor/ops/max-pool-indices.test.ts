/**
 * MaxPool's Indices output against onnxruntime on fresh random inputs with many ties (values on
 * a coarse grid, so the first maximum in scan order must win): 1-D and 2-D, storage_order 0 and
 * 1, pads, strides, dilations, ceil_mode, auto_pad; INT8 input; the refusal of 3-D indices.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { compileError } from '../numerics/one-node.ts';
import { checkRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** Values from {-1, -0.5, 0, 0.5, 1}: windows hold several equal maxima. */
function coarse(shape: number[]): HostTensor {
  const count = shape.reduce((a, b) => a * b, 1);
  return { datatype: 'FP32', shape, data: Float32Array.from({ length: count }, () => Math.floor(Math.random() * 5) / 2 - 1) };
}

function maxPoolGraph(shape: number[], attributes: Record<string, AttributeValue>): GraphBuilder {
  return new GraphBuilder('maxpool_indices').input('x', 'FP32', shape)
    .node('MaxPool', ['x'], ['y', 'indices'], attributes, 'maxpool_under_test').output('y', 'FP32', []).output('indices', 'INT64', []);
}

const maxPoolCase = (shape: number[], attributes: Record<string, AttributeValue>) =>
  checkRuns(gpu, unrankedOutputs(maxPoolGraph(shape, attributes), 12), [0, 1].map(() => new Map([['x', coarse(shape)]])));

describe('MaxPool with Indices', () => {
  it.each<[number[], Record<string, AttributeValue>]>([
    [[2, 3, 9, 11], { kernel_shape: [3, 3] }],
    [[2, 3, 9, 11], { kernel_shape: [3, 2], storage_order: 1 }],
    [[1, 2, 7, 8], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
    [[1, 2, 7, 8], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 0, 2, 1], storage_order: 1 }],
    [[1, 3, 10, 9], { kernel_shape: [2, 3], dilations: [2, 2], ceil_mode: 1, strides: [2, 2] }],
    [[2, 2, 6, 7], { kernel_shape: [3, 3], auto_pad: 'SAME_UPPER', strides: [2, 1] }],
    [[3, 2, 13], { kernel_shape: [4], strides: [3], pads: [1, 2] }],
    [[0, 2, 5, 5], { kernel_shape: [2, 2] }],
  ])('%j %j', async (shape, attributes) => void await maxPoolCase(shape, attributes));
  it('on INT8 (cast in the graph)', async () => {
    const graph = new GraphBuilder('maxpool_int8_indices').input('x', 'INT32', [1, 2, 6, 7])
      .node('Cast', ['x'], ['t'], { to: 3 }).node('MaxPool', ['t'], ['m', 'indices'], { kernel_shape: [3, 2], strides: [1, 2] })
      .node('Cast', ['m'], ['y'], { to: 6 }).output('y', 'INT32', []).output('indices', 'INT64', []);
    const values = (): HostTensor => ({ datatype: 'INT32', shape: [1, 2, 6, 7], data: Int32Array.from({ length: 84 }, () => Math.floor(Math.random() * 7) - 3) });
    await checkRuns(gpu, unrankedOutputs(graph, 12), [new Map([['x', values()]]), new Map([['x', values()]])]);
  });
  it('a 3-D MaxPool naming Indices is refused', async () => {
    const error = await compileError(gpu, unrankedOutputs(maxPoolGraph([1, 1, 4, 4, 4], { kernel_shape: [2, 2, 2] }), 12));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("operator 'MaxPool' (node 'maxpool_under_test') is not supported with output 'Indices' of a 3-D MaxPool");
  });
});
