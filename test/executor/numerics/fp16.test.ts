/**
 * The fp16 storage mode (floats stored as f16, arithmetic in f32) against onnxruntime's fp32 CPU
 * results, within FP16_TOLERANCE (1e-2 of max(|value|, the output's RMS); ort-reference.ts says
 * why): Conv (implicit GEMM and depthwise), MatMul, LayerNormalization, Softmax and both example
 * models at batch 1 and 8.
 *
 * That fp16 really runs is checked twice: the compiled model reports it, and a MaxPool with a
 * 1×1 window returns each input rounded to f16, which an f32 path would not.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { buildResNetStyle, buildTransformerEncoder, type ExampleModel } from '../../../services/examples/models/index.ts';
import { openGpu } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { buildOneNodeModel, type OneNodeCase } from './one-node.ts';
import { expectCloseFp16, randomTensor, runOrt } from './ort-reference.ts';

// Opened at load so the skip below can depend on the adapter's features.
const gpu = await openGpu();
afterAll(() => gpu.destroy());

/**
 * Without the shader-f16 feature WGSL has no f16 type: the executor then runs fp16 requests in
 * fp32 (model-runtime.ts), so there is nothing fp16 to test on such an adapter.
 */
const SKIP_REASON = gpu.hasF16 ? undefined : 'the adapter lacks shader-f16, so fp16 requests run in fp32';

/**
 * Compiles `bytes` in fp16, checks the model reports fp16, and compares two runs on fresh inputs
 * with onnxruntime (fp32). Returns the largest error seen as a fraction of the output's RMS.
 */
async function checkFp16(bytes: Uint8Array, inputs: () => Map<string, HostTensor>, rounds = 2): Promise<number> {
  const model = await compileOnnxModel(gpu, bytes, { precision: 'fp16', isolate: false });
  let largest = 0;
  try {
    expect(model.precision).toBe('fp16');
    for (let round = 0; round < rounds; round++) {
      const feeds = inputs();
      const [ours, reference] = await Promise.all([model.run(feeds), runOrt(bytes, feeds)]);
      expect([...ours.outputs.keys()].sort()).toEqual([...reference.keys()].sort());
      for (const [name, tensor] of reference) largest = Math.max(largest, expectCloseFp16(name, ours.outputs.get(name), tensor));
    }
  } finally {
    model.dispose();
  }
  return largest;
}

function checkOneNodeFp16(testCase: Omit<OneNodeCase, 'inputs'> & { inputs: Array<[name: string, shape: number[]]> }): Promise<number> {
  return checkFp16(buildOneNodeModel(testCase), () => new Map(testCase.inputs.map(([name, shape]) => [name, randomTensor(shape, testCase.scale)])));
}

describe.skipIf(SKIP_REASON !== undefined)(`fp16 storage${SKIP_REASON ? ` (skipped: ${SKIP_REASON})` : ''}`, () => {
  it('is really used: a 1×1 MaxPool returns every input rounded to f16', async () => {
    const bytes = buildOneNodeModel({ op: 'MaxPool', inputs: [['x', [2, 3, 5, 7]]], output: [2, 3, 5, 7], attributes: { kernel_shape: [1, 1] } });
    const model = await compileOnnxModel(gpu, bytes, { precision: 'fp16', isolate: false });
    try {
      expect(model.precision).toBe('fp16');
      const x = randomTensor([2, 3, 5, 7]);
      const { outputs } = await model.run(new Map([['x', x]]));
      const ours = outputs.get('y')!;
      // Outputs stay FP32 tensors on the host whatever the storage.
      expect(ours.datatype).toBe('FP32');
      const input = x.data as Float32Array;
      expect(Array.from(ours.data as Float32Array)).toEqual(Array.from(input, (value) => Math.f16round(value)));
      // Random floats almost never are f16 values already, so this is not the f32 identity.
      expect(input.some((value) => Math.f16round(value) !== value)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it('Conv 8→12, 3×3, pads 1, with bias, on [2, 8, 15, 13]', () =>
    checkOneNodeFp16({
      op: 'Conv', inputs: [['x', [2, 8, 15, 13]]], nodeInputs: ['x', 'w', 'b'], output: [2, 12, 15, 13], attributes: { kernel_shape: [3, 3], pads: [1, 1, 1, 1] },
      initializers: [{ name: 'w', tensor: randomTensor([12, 8, 3, 3], Math.sqrt(3 / 72)) }, { name: 'b', tensor: randomTensor([12], 0.5) }],
    }));

  it('depthwise Conv, 10 channels, 3×3 stride 2, on [1, 10, 17, 16]', () =>
    checkOneNodeFp16({
      op: 'Conv', inputs: [['x', [1, 10, 17, 16]]], nodeInputs: ['x', 'w'], output: [1, 10, 9, 8],
      attributes: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [2, 2], group: 10 },
      initializers: [{ name: 'w', tensor: randomTensor([10, 1, 3, 3], Math.sqrt(3 / 9)) }],
    }));

  it('MatMul [13, 64] @ [64, 24], both inputs', () =>
    checkOneNodeFp16({ op: 'MatMul', inputs: [['a', [13, 64]], ['b', [64, 24]]], output: [13, 24] }));

  it('MatMul [3, 7, 33] @ a [33, 10] weight initializer', () =>
    checkOneNodeFp16({
      op: 'MatMul', inputs: [['a', [3, 7, 33]]], nodeInputs: ['a', 'w'], output: [3, 7, 10], initializers: [{ name: 'w', tensor: randomTensor([33, 10]) }],
    }));

  it('LayerNormalization, axis -1 of [4, 13, 64]', () =>
    checkOneNodeFp16({
      op: 'LayerNormalization', inputs: [['x', [4, 13, 64]]], nodeInputs: ['x', 'scale', 'bias'], output: [4, 13, 64], attributes: { axis: -1 }, scale: 3,
      initializers: [{ name: 'scale', tensor: randomTensor([64]) }, { name: 'bias', tensor: randomTensor([64], 0.5) }],
    }));

  it('Softmax, axis -1 of [3, 5, 37], inputs in ±5', () =>
    checkOneNodeFp16({ op: 'Softmax', inputs: [['x', [3, 5, 37]]], output: [3, 5, 37], attributes: { axis: -1 }, scale: 5 }));

  const models: ExampleModel[] = [buildResNetStyle(), buildTransformerEncoder()];
  for (const built of models) {
    it(`${built.name} (seed ${built.seed}) at batch 1 and 8`, async () => {
      let batch = 1;
      const largest = await checkFp16(built.onnx, () => {
        const feeds = new Map([[built.input.name, randomTensor(built.inputShape(batch))]]);
        batch = 8;
        return feeds;
      });
      // A whole model rounds thousands of values to f16 on the way: an error this small would
      // mean it ran in f32.
      expect(largest).toBeGreaterThan(1e-4);
    });
  }
});
