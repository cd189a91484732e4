/**
 * A VGG-19-shaped model whose weights are all built in the graph (ConstantOfShape scaled by a
 * small per-channel initializer: a constant subgraph, as some exports and the model zoo's VGG-19
 * write them), served through a real registry, router and an executor in its own process. The
 * file is about 120 kB; folding makes hundreds of megabytes of fp32 weights on the executor,
 * which must load them (isolated compile check included), answer like onnxruntime, and stay
 * within a bounded peak RSS, measured from the executor process's VmHWM and printed.
 *
 * The spatial size follows the device: 224 (the real VGG-19, fc6 [4096, 25088] of 411 MB) when
 * one binding takes that, else 128 (fc6 [4096, 8192], 128 MiB, as lavapipe binds at most).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu } from '../../services/executor/gpu/index.ts';
import { GraphBuilder, tensorAttribute } from '../../services/onnx/builder.ts';
import type { HostTensor } from '../../services/onnx/model.ts';
import { runOrt } from '../executor/numerics/ort-reference.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';
import { processMemory } from './process-memory.ts';

const VGG19 = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 256, 'M', 512, 512, 512, 512, 'M', 512, 512, 512, 512, 'M'] as const;
const CLASSES = 1000;

/** Weights as ConstantOfShape(shape) * scale, scale one random value per output channel in [0.5, 1.5] / fan-in. */
function vgg19ConstantWeights(size: number): { bytes: Uint8Array; foldedWeightBytes: number } {
  const graph = new GraphBuilder('vgg19_constant_of_shape').input('data', 'FP32', [-1, 3, size, size]);
  let counter = 0;
  let foldedWeightBytes = 0;
  const fresh = (prefix: string) => `${prefix}${counter++}`;
  const weight = (shape: number[]) => {
    const [shapeName, filledName, scaleName, weightName] = ['shape', 'filled', 'scale', 'w'].map(fresh);
    const fanIn = shape.slice(1).reduce((product, dim) => product * dim, 1);
    graph.initializer(shapeName, 'INT64', [shape.length], BigInt64Array.from(shape, BigInt));
    graph.node('ConstantOfShape', [shapeName], [filledName], { value: tensorAttribute('FP32', [1], Float32Array.of(1)) }, filledName);
    const scales = Float32Array.from({ length: shape[0] }, () => (0.5 + Math.random()) / fanIn);
    graph.initializer(scaleName, 'FP32', [shape[0], ...shape.slice(1).map(() => 1)], scales);
    graph.node('Mul', [filledName, scaleName], [weightName], {}, weightName);
    foldedWeightBytes += 4 * shape.reduce((product, dim) => product * dim, 1);
    return weightName;
  };
  const bias = (channels: number) => {
    const name = fresh('bias');
    graph.initializer(name, 'FP32', [channels], Float32Array.from({ length: channels }, () => Math.random() * 0.02));
    return name;
  };
  let x = 'data';
  let channels = 3;
  for (const layer of VGG19) {
    const y = fresh(layer === 'M' ? 'pool' : 'relu');
    if (layer === 'M') {
      graph.node('MaxPool', [x], [y], { kernel_shape: [2, 2], strides: [2, 2] }, y);
    } else {
      const conv = fresh('conv');
      graph.node('Conv', [x, weight([layer, channels, 3, 3]), bias(layer)], [conv], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, conv);
      graph.node('Relu', [conv], [y], {}, y);
      channels = layer;
    }
    x = y;
  }
  graph.node('Flatten', [x], ['flat'], { axis: 1 }, 'flatten');
  x = 'flat';
  let features = 512 * (size / 32) ** 2;
  for (const [index, out] of [4096, 4096, CLASSES].entries()) {
    const y = fresh('fc');
    graph.node('Gemm', [x, weight([out, features]), bias(out)], [y], { transB: 1 }, y);
    x = y;
    features = out;
    if (index < 2) {
      const relu = fresh('relu');
      graph.node('Relu', [x], [relu], {}, relu);
      x = relu;
    }
  }
  graph.node('Identity', [x], ['logits'], {}, 'logits');
  graph.output('logits', 'FP32', [-1, CLASSES]);
  return { bytes: graph.toBytes({ opset: 17 }), foldedWeightBytes };
}

const MIB = 2 ** 20;
let cluster: Cluster;
let size: number;
beforeAll(async () => {
  const gpu = await openGpu();
  size = gpu.device.limits.maxStorageBufferBindingSize >= 4096 * 25088 * 4 ? 224 : 128;
  gpu.destroy();
  cluster = await startCluster({ executorProcesses: 1, policy: { maxBatchSize: 1, maxQueueDelayMs: 0, maxQueueSize: 16 } });
});
afterAll(() => cluster?.stop());

describe('weights built in the graph by ConstantOfShape', () => {
  it('loads a VGG-19-shaped model through the services within a bounded RSS and answers like onnxruntime', async () => {
    const { bytes, foldedWeightBytes } = vgg19ConstantWeights(size);
    expect(bytes.byteLength).toBeLessThan(256 * 1024);
    const pid = cluster.executorProcesses[0].process.pid!;
    const idle = processMemory(pid);
    await cluster.store('vgg19-constant', bytes);
    const started = performance.now();
    await cluster.waitUntilReady('vgg19-constant', 600_000);
    const loadMs = performance.now() - started;

    const input: HostTensor = { datatype: 'FP32', shape: [1, 3, size, size], data: Float32Array.from({ length: 3 * size * size }, () => Math.random()) };
    const inferStarted = performance.now();
    const response = await cluster.infer({
      modelName: 'vgg19-constant', inputs: [{ name: 'data', datatype: 'FP32', shape: input.shape, parameters: {}, contents: fp32Contents([...input.data as Float32Array]) }],
    }, 600_000);
    const inferMs = performance.now() - inferStarted;
    const got = response.rawOutputContents.length > 0
      ? new Float32Array(new Uint8Array(response.rawOutputContents[0]).slice().buffer)
      : Float32Array.from(response.outputs[0].contents!.fp32Contents);
    const want = (await runOrt(bytes, new Map([['data', input]]))).get('logits')!.data as Float32Array;
    expect(got).toHaveLength(CLASSES);
    const scale = Math.max(...want.map(Math.abs));
    const maxError = Math.max(...got.map((value, index) => Math.abs(value - want[index])));
    expect(maxError / scale).toBeLessThan(1e-3);
    const argmax = (values: Float32Array) => values.indexOf(Math.max(...values));
    expect(argmax(got)).toBe(argmax(want));

    const { peakBytes, currentBytes } = processMemory(pid);
    console.log(`vgg19 ${size}x${size}: ${(foldedWeightBytes / MIB).toFixed(0)} MiB of folded weights from a ${bytes.byteLength}-byte file; `
      + `load ${(loadMs / 1000).toFixed(1)} s, first inference ${(inferMs / 1000).toFixed(1)} s; executor RSS idle ${(idle.currentBytes / MIB).toFixed(0)} MiB, `
      + `peak ${(peakBytes / MIB).toFixed(0)} MiB, after ${(currentBytes / MIB).toFixed(0)} MiB; max error / max |logit| ${(maxError / scale).toExponential(2)}`);
    // Folded weights, the GEMM layouts made from them, their GPU copies (host memory on a CPU
    // adapter) and the transient copies while they are made: bounded by a small multiple of
    // the weights, never by JS arrays of numbers (8+ bytes an element on the V8 heap).
    expect(peakBytes - idle.peakBytes).toBeLessThan(5 * foldedWeightBytes + 512 * MIB);
  }, 900_000);
});
