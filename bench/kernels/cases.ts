/**
 * The kernel bench's cases: ONNX models built in code (a matrix product, a convolution, the two
 * example models), each run whole by every engine, with the floating-point work of one run.
 */
import { buildResNetStyle, buildTransformerEncoder, type ExampleModel } from '../../services/examples/models/index.ts';
import { GraphBuilder, type HostTensor } from '../../services/onnx/index.ts';

/** One benchmark row: a model, its inputs, and the work it does (for GFLOPS). */
export interface BenchCase {
  name: string;
  /** Stable id for figures and JSON rows. */
  id: string;
  onnx: Uint8Array;
  inputs: Map<string, HostTensor>;
  /** Floating-point operations of one run (2 per multiply-add); undefined where not counted. */
  flops?: number;
  /**
   * Divides the run count for cases that take seconds per run on a software GPU, so the
   * defaults finish in minutes; at least 3 runs are kept for a median.
   */
  heavy?: boolean;
  /** In the quick set (bench/run.ts --quick, the CI gate): the cases whose ratio is steady under load. */
  quick?: boolean;
}

const random = (count: number, scale: number) => Float32Array.from({ length: count }, () => (Math.random() * 2 - 1) * scale);
const fp32 = (shape: number[], scale = 1): HostTensor => ({ datatype: 'FP32', shape, data: random(shape.reduce((a, b) => a * b, 1), scale) });

/** y = x @ W with W a [K, N] initializer: a dense layer's product, the shape models have. */
function matmulCase(m: number, k: number, n: number, quick: boolean): BenchCase {
  const graph = new GraphBuilder(`matmul_${m}x${k}x${n}`)
    .input('x', 'FP32', [m, k])
    .initializer('w', 'FP32', [k, n], random(k * n, 1 / Math.sqrt(k)))
    .node('MatMul', ['x', 'w'], ['y'])
    .output('y', 'FP32', [m, n]);
  return {
    name: `matmul ${m}×${k}×${n}`, id: `matmul_${m}x${k}x${n}`, onnx: graph.toBytes(), inputs: new Map([['x', fp32([m, k])]]),
    flops: 2 * m * n * k, heavy: m * n * k >= 1024 ** 3, quick,
  };
}

/** A 3×3 convolution, pad 1, stride 1, with bias, NCHW. */
function convCase(batch: number, channelsIn: number, channelsOut: number, size: number): BenchCase {
  const k = channelsIn * 9;
  const graph = new GraphBuilder(`conv3x3_${channelsIn}_${channelsOut}_${size}`)
    .input('x', 'FP32', [batch, channelsIn, size, size])
    .initializer('w', 'FP32', [channelsOut, channelsIn, 3, 3], random(channelsOut * k, 1 / Math.sqrt(k)))
    .initializer('b', 'FP32', [channelsOut], random(channelsOut, 0.1))
    .node('Conv', ['x', 'w', 'b'], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })
    .output('y', 'FP32', [batch, channelsOut, size, size]);
  return {
    name: `conv 3×3 ${channelsIn}→${channelsOut} @ ${size}×${size}, batch ${batch}`, id: `conv3x3_${channelsIn}_${channelsOut}_${size}_b${batch}`,
    onnx: graph.toBytes(), inputs: new Map([['x', fp32([batch, channelsIn, size, size])]]),
    flops: 2 * batch * size * size * channelsOut * k, quick: true,
  };
}

/** A whole example model at one batch size (fixed seeds: every run benchmarks the same weights). */
function modelCase(model: ExampleModel, batch: number): BenchCase {
  return {
    name: `${model.name}, input ${model.inputShape(batch).join('×')}`, id: `${model.name}_b${batch}`, onnx: model.onnx,
    inputs: new Map([[model.input.name, fp32(model.inputShape(batch))]]), flops: model.flopsPerSample * batch,
    // Batch 1 is a few hundred microseconds of fixed cost per dispatch and swings with load.
    quick: batch > 1,
  };
}

/** Every case, built when its turn comes (the 1024³ weights alone are 4 MiB). */
export const CASES: Array<() => BenchCase> = [
  () => matmulCase(256, 1024, 1024, true),
  () => matmulCase(1024, 1024, 1024, false),
  () => convCase(1, 64, 64, 56),
  () => modelCase(buildResNetStyle({ seed: 1 }), 1),
  () => modelCase(buildResNetStyle({ seed: 1 }), 32),
  () => modelCase(buildTransformerEncoder({ seed: 2 }), 1),
  () => modelCase(buildTransformerEncoder({ seed: 2 }), 32),
];

/** Largest |a - b| / (1 + |b|): how far ours is from onnxruntime's CPU result. */
export function maxRelativeError(ours: Float32Array, reference: Float32Array): number {
  let worst = 0;
  for (let index = 0; index < reference.length; index++) worst = Math.max(worst, Math.abs(ours[index] - reference[index]) / (1 + Math.abs(reference[index])));
  return worst;
}
