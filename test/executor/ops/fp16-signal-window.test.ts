/**
 * The kernels behind DFT / STFT, Conv and ConvTranspose with weights given at run time, and
 * MaxPool's Indices in fp16 storage (floats stored as f16, sums in f32) against onnxruntime's
 * fp32 CPU results within FP16_TOLERANCE. On an adapter without shader-f16 the executor runs fp16
 * requests in fp32, which the same tolerance accepts; the reported precision says which ran.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openGpu } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { expectClose, expectCloseFp16, randomTensor, runOrt } from '../numerics/ort-reference.ts';
import { unrankedOutputs } from './op-cases.ts';

const gpu = await openGpu();
afterAll(() => gpu.destroy());

/** One node over FP32 graph inputs of `shapes` (and INT64 initializers), outputs named `outputs`. */
async function checkFp16(op: string, shapes: Record<string, number[]>, attributes: Record<string, AttributeValue>, outputs: Array<[string, 'FP32' | 'INT64']>,
  initializers: Record<string, number> = {}, nodeInputs = Object.keys(shapes), opset = 17): Promise<void> {
  const graph = new GraphBuilder(`${op.toLowerCase()}_fp16`);
  for (const [name, shape] of Object.entries(shapes)) graph.input(name, 'FP32', shape);
  for (const [name, value] of Object.entries(initializers)) graph.initializer(name, 'INT64', [], BigInt64Array.of(BigInt(value)));
  graph.node(op, nodeInputs, outputs.map(([name]) => name), attributes);
  for (const [name, datatype] of outputs) graph.output(name, datatype, []);
  const bytes = unrankedOutputs(graph, opset);
  const model = await compileOnnxModel(gpu, bytes, { precision: 'fp16', isolate: false });
  try {
    expect(model.precision).toBe(gpu.hasF16 ? 'fp16' : 'fp32');
    const feeds = new Map<string, HostTensor>(Object.entries(shapes).map(([name, shape]) => [name, randomTensor(shape)]));
    const [ours, reference] = await Promise.all([model.run(feeds), runOrt(bytes, feeds)]);
    for (const [name, tensor] of reference) {
      if (tensor.datatype === 'FP32') expectCloseFp16(name, ours.outputs.get(name), tensor);
      else expectClose(name, ours.outputs.get(name), tensor);
    }
  } finally {
    model.dispose();
  }
}

describe('in fp16 storage', () => {
  it('DFT, complex, inverse', () => checkFp16('DFT', { x: [2, 12, 3, 2] }, { axis: 1, inverse: 1 }, [['y', 'FP32']]));
  it('STFT with a window', () => checkFp16('STFT', { x: [2, 45, 1], w: [10] }, {}, [['y', 'FP32']], { step: 5 }, ['x', 'step', 'w']));
  it('Conv with weights and bias given at run time', () => checkFp16('Conv', { x: [1, 3, 9, 8], w: [4, 3, 3, 3], b: [4] }, { pads: [1, 1, 1, 1] }, [['y', 'FP32']]));
  it('ConvTranspose without kernel_shape', () => checkFp16('ConvTranspose', { x: [1, 2, 4, 5], w: [2, 3, 3, 2] }, { strides: [2, 2] }, [['y', 'FP32']]));
  it('MaxPool with Indices', () => checkFp16('MaxPool', { x: [1, 3, 7, 9] }, { kernel_shape: [3, 3], strides: [2, 2] }, [['y', 'FP32'], ['i', 'INT64']], {}, ['x'], 12));
});
