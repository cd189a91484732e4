/**
 * MaxUnpool against onnxruntime on fresh random inputs: after a MaxPool's Indices (1-D and 2-D,
 * strides, pads, overlapping windows) with output_shape the pool's input shape, on unique random
 * indices over 1 to 3 spatial dims and opsets 9 and 11, and with an output_shape equal to or
 * larger than the inferred shape. Bad shapes answer INVALID_ARGUMENT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, checkOneNode, int64 } from '../numerics/one-node.ts';
import { randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const count = (shape: number[]) => shape.reduce((total, dim) => total * dim, 1);

/** `shape`'s worth of distinct flat positions in [0, total), shuffled afresh. */
function uniqueIndices(shape: number[], total: number): HostTensor {
  const positions = Array.from({ length: total }, (_, index) => index);
  for (let index = total - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1));
    [positions[index], positions[other]] = [positions[other], positions[index]];
  }
  return int64(positions.slice(0, count(shape)), shape);
}

describe('MaxUnpool against onnxruntime', () => {
  const POOLED: Array<{ shape: number[]; attributes: Record<string, AttributeValue> }> = [
    { shape: [2, 3, 9, 11], attributes: { kernel_shape: [2, 2], strides: [2, 2] } },
    { shape: [1, 2, 10, 7], attributes: { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] } },
    { shape: [3, 2, 13], attributes: { kernel_shape: [3], strides: [3] } },
  ];
  for (const { shape, attributes } of POOLED) {
    it(`after MaxPool's Indices, back into the pool's input shape: [${shape}] ${JSON.stringify(attributes)}`, async () => {
      const bytes = new GraphBuilder('pool_unpool').input('x', 'FP32', shape)
        .node('MaxPool', ['x'], ['pooled', 'indices'], attributes)
        .node('Shape', ['x'], ['x_shape'])
        .node('MaxUnpool', ['pooled', 'indices', 'x_shape'], ['y'], attributes)
        .output('y', 'FP32', shape).toBytes({ opset: 12 });
      await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape }], [{ name: 'y', shape }]);
    });
  }

  const DIRECT: Array<{ shape: number[]; attributes: Record<string, AttributeValue>; output: number[]; opset: number }> = [
    { shape: [2, 3, 4, 5], attributes: { kernel_shape: [3, 2], strides: [2, 3] }, output: [2, 3, 9, 14], opset: 9 },
    { shape: [1, 2, 3, 2, 4], attributes: { kernel_shape: [2, 2, 2], strides: [2, 2, 2] }, output: [1, 2, 6, 4, 8], opset: 11 },
    { shape: [2, 1, 7], attributes: { kernel_shape: [4], strides: [2], pads: [1, 2] }, output: [2, 1, 13], opset: 11 },
  ];
  for (const { shape, attributes, output, opset } of DIRECT) {
    it(`opset ${opset}: unique random indices, [${shape}] -> [${output}]`, () => checkOneNode(gpu, {
      op: 'MaxUnpool', opset, attributes, output,
      inputs: [['x', shape], { name: 'i', shape, datatype: 'INT64', fill: (indexShape: number[]) => uniqueIndices(indexShape, count(output)) }],
    }));
  }

  for (const output of [[1, 2, 6, 8], [1, 2, 7, 9]]) {
    it(`output_shape [${output}] (the inferred shape is [1, 2, 6, 8])`, () => checkOneNode(gpu, {
      op: 'MaxUnpool', opset: 11, attributes: { kernel_shape: [2, 2], strides: [2, 2] }, output,
      inputs: [['x', [1, 2, 3, 4]], { name: 'i', shape: [1, 2, 3, 4], datatype: 'INT64', fill: (shape: number[]) => uniqueIndices(shape, count(output)) }],
      nodeInputs: ['x', 'i', 'output_shape'], initializers: [{ name: 'output_shape', tensor: int64(output) }],
    }));
  }
});

describe('MaxUnpool refusals', () => {
  it('answers INVALID_ARGUMENT when the indices do not have the input shape', async () => {
    const bytes = new GraphBuilder('unpool_bad').input('x', 'FP32', [1, 1, 2, 2]).input('i', 'INT64', [1, 1, 2, 3])
      .node('MaxUnpool', ['x', 'i'], ['y'], { kernel_shape: [2, 2], strides: [2, 2] })
      .output('y', 'FP32', [1, 1, 4, 4]).toBytes({ opset: 11 });
    const outcome = await compileOnnxModel(gpu, bytes, { isolate: false }).then(async (model) => {
      try {
        return await model.run(new Map([['x', randomTensor([1, 1, 2, 2])], ['i', int64([0, 1, 2, 3, 4, 5], [1, 1, 2, 3])]])).then(() => undefined, (error: unknown) => error);
      } finally {
        model.dispose();
      }
    }, (error: unknown) => error);
    expect(outcome).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining("input 'I' has shape [1, 1, 2, 3]") });
  });
});
