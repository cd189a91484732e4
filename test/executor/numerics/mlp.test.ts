/**
 * A random-weight MLP with a dynamic batch dim, against onnxruntime-node: several batch sizes,
 * repeated calls (plan cache, including eviction), concurrent calls, and GPU timing.
 *
 *   x[B, 37] → Gemm(W1ᵀ, b1)[B, 129] → Relu → Gemm(W2, b2)[B, 64] → Tanh ("hidden", also an output)
 *            → MatMul(W3)[B, 10] → Add(b3) → Sigmoid → Softmax → "probabilities"
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel, PLAN_CACHE_CAPACITY, type CompiledModel } from '../../../services/executor/runtime/index.ts';
import { float, GraphBuilder } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { expectClose, randomTensor, runOrt } from './ort-reference.ts';

const [INPUT, HIDDEN_1, HIDDEN_2, CLASSES] = [37, 129, 64, 10];

/** Weights scaled by 1/sqrt(fan-in) so activations stay in the range where each op matters. */
function layerWeights(shape: number[], fanIn: number): HostTensor {
  return randomTensor(shape, Math.sqrt(3 / fanIn));
}

function buildMlp(): Uint8Array {
  const w1 = layerWeights([HIDDEN_1, INPUT], INPUT); // stored transposed, read with transB
  const w2 = layerWeights([HIDDEN_1, HIDDEN_2], HIDDEN_1);
  const w3 = layerWeights([HIDDEN_2, CLASSES], HIDDEN_2);
  return new GraphBuilder('mlp')
    .input('x', 'FP32', [-1, INPUT])
    .initializer('w1', 'FP32', w1.shape, w1.data)
    .initializer('b1', 'FP32', [HIDDEN_1], randomTensor([HIDDEN_1], 0.1).data)
    .initializer('w2', 'FP32', w2.shape, w2.data)
    .initializer('b2', 'FP32', [1, HIDDEN_2], randomTensor([1, HIDDEN_2], 0.1).data)
    .initializer('w3', 'FP32', w3.shape, w3.data)
    .initializer('b3', 'FP32', [CLASSES], randomTensor([CLASSES], 0.1).data)
    .node('Gemm', ['x', 'w1', 'b1'], ['h1'], { transB: 1 }, 'dense_1')
    .node('Relu', ['h1'], ['a1'], {}, 'relu_1')
    .node('Gemm', ['a1', 'w2', 'b2'], ['h2'], { alpha: float(0.9), beta: float(1.1) }, 'dense_2')
    .node('Tanh', ['h2'], ['hidden'], {}, 'tanh_2')
    .node('MatMul', ['hidden', 'w3'], ['logits_raw'], {}, 'project')
    .node('Add', ['logits_raw', 'b3'], ['logits'], {}, 'project_bias')
    .node('Sigmoid', ['logits'], ['gates'], {}, 'gate')
    .node('Softmax', ['gates'], ['probabilities'], { axis: -1 }, 'softmax')
    .output('probabilities', 'FP32', [-1, CLASSES])
    .output('hidden', 'FP32', [-1, HIDDEN_2])
    .toBytes({ opset: 17 });
}

let gpu: GpuContext;
let bytes: Uint8Array;
let model: CompiledModel;
beforeAll(async () => {
  gpu = await openGpu();
  bytes = buildMlp();
  model = await compileOnnxModel(gpu, bytes);
});
afterAll(() => {
  model?.dispose();
  gpu?.destroy();
});

const batchOf = (size: number) => new Map([['x', randomTensor([size, INPUT], 2)]]);

/** Our outputs for `inputs` (already computed) against onnxruntime's. */
async function expectRunMatches(outputs: Map<string, HostTensor>, inputs: Map<string, HostTensor>): Promise<void> {
  const reference = await runOrt(bytes, inputs);
  expect([...outputs.keys()]).toEqual(['probabilities', 'hidden']);
  for (const [name, tensor] of reference) expectClose(name, outputs.get(name), tensor);
}

describe('MLP (Gemm → Relu → Gemm → Tanh → MatMul + Add → Sigmoid → Softmax)', () => {
  it('has the signature of its graph', () => {
    expect(model.signature.inputs).toEqual([{ name: 'x', datatype: 'FP32', shape: [-1, INPUT] }]);
    expect(model.signature.outputs.map((output) => [output.name, output.shape])).toEqual([
      ['probabilities', [-1, CLASSES]], ['hidden', [-1, HIDDEN_2]],
    ]);
  });

  it.each([1, 5, 64])('matches onnxruntime at batch size %i', async (size) => {
    const inputs = batchOf(size);
    const { outputs } = await model.run(inputs);
    expect(outputs.get('probabilities')!.shape).toEqual([size, CLASSES]);
    await expectRunMatches(outputs, inputs);
  });

  it('stays correct on repeated calls, switching batch sizes and past the plan cache capacity', async () => {
    // Enough distinct sizes to evict the oldest plans, then sizes that were evicted and kept.
    const sizes = [5, 1, 5, 64, ...Array.from({ length: PLAN_CACHE_CAPACITY + 1 }, (_, index) => index + 2), 5, 1, 64, 64];
    for (const size of sizes) {
      const inputs = batchOf(size);
      await expectRunMatches((await model.run(inputs)).outputs, inputs);
    }
  });

  it('keeps 8 concurrent calls apart, each with its own inputs', async () => {
    const batches = [3, 3, 7, 1, 3, 16, 7, 3].map(batchOf);
    const results = await Promise.all(batches.map((inputs) => model.run(inputs)));
    for (const [index, result] of results.entries()) await expectRunMatches(result.outputs, batches[index]);
  });

  it('reports GPU time when the device has timestamp queries', async () => {
    const { gpuNs } = await model.run(batchOf(64));
    if (gpu.hasTimestamps) {
      expect(gpuNs).toBeGreaterThan(0);
      // Six dispatches of a few hundred KFLOP: far below a second even on a software GPU.
      expect(gpuNs).toBeLessThan(1e9);
    } else {
      expect(gpuNs).toBeUndefined();
    }
  });

  it('refuses runs after dispose', async () => {
    const disposable = await compileOnnxModel(gpu, bytes);
    const inputs = batchOf(2);
    const pending = disposable.run(inputs);
    disposable.dispose();
    // A run queued before dispose still completes; a new one is refused.
    await expectRunMatches((await pending).outputs, inputs);
    await expect(disposable.run(batchOf(2))).rejects.toThrow(/disposed/);
  });
});
