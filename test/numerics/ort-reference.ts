/**
 * Shared by the numerics tests: random inputs, onnxruntime-node (CPU) as the reference, and the
 * per-dtype tolerance our GPU results must meet.
 */
import ort from 'onnxruntime-node';
import { expect } from 'vitest';
import type { HostTensor } from '../../services/onnx/model.ts';
import type { CompiledModel } from '../../services/executor/runtime/model-runtime.ts';

/**
 * FP32: |ours - ort| <= relative * |ort| + absolute. Different summation orders (tiled matmul,
 * tree reductions) and GPU exp/tanh differ from the CPU by a few ulps, far inside this.
 */
export const FP32_TOLERANCE = { relative: 1e-4, absolute: 1e-5 } as const;

/** Uniform random values in [-scale, scale), fresh on every call. */
export function randomTensor(shape: readonly number[], scale = 1): HostTensor {
  const count = shape.reduce((product, dim) => product * dim, 1);
  return { datatype: 'FP32', shape: [...shape], data: Float32Array.from({ length: count }, () => (Math.random() * 2 - 1) * scale) };
}

/** Runs `modelBytes` on onnxruntime's CPU provider. */
export async function runOrt(modelBytes: Uint8Array, inputs: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>> {
  const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['cpu'] });
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of inputs) feeds[name] = new ort.Tensor('float32', tensor.data as Float32Array, tensor.shape);
  const results = await session.run(feeds);
  await session.release();
  return new Map(Object.entries(results).map(([name, tensor]) => [
    name, { datatype: 'FP32', shape: [...tensor.dims], data: tensor.data as Float32Array },
  ]));
}

/** Asserts same shape and every element within FP32_TOLERANCE, reporting the worst element. */
export function expectClose(name: string, ours: HostTensor | undefined, reference: HostTensor): void {
  expect(ours, `output '${name}' is missing`).toBeDefined();
  expect(ours!.shape, `shape of '${name}'`).toEqual(reference.shape);
  const got = ours!.data as Float32Array;
  const want = reference.data as Float32Array;
  expect(got.length, `element count of '${name}'`).toBe(want.length);
  let failures = 0;
  let worst = { index: -1, excess: 0 };
  for (let index = 0; index < want.length; index++) {
    const allowed = FP32_TOLERANCE.relative * Math.abs(want[index]) + FP32_TOLERANCE.absolute;
    const error = Math.abs(got[index] - want[index]);
    // `!(error <= allowed)` also catches NaN.
    if (!(error <= allowed)) {
      failures++;
      const excess = Number.isNaN(error) ? Infinity : error / allowed;
      if (worst.index < 0 || excess > worst.excess) worst = { index, excess };
    }
  }
  const detail = worst.index < 0 ? '' :
    `; worst at ${worst.index}: ours ${got[worst.index]}, ort ${want[worst.index]} (${worst.excess.toFixed(1)}× the tolerance)`;
  expect(failures, `elements of '${name}' outside tolerance${detail}`).toBe(0);
}

/** Runs `inputs` through our model and onnxruntime and compares every output. */
export async function expectMatchesOrt(model: CompiledModel, modelBytes: Uint8Array, inputs: Map<string, HostTensor>): Promise<void> {
  const [ours, reference] = await Promise.all([model.run(inputs), runOrt(modelBytes, inputs)]);
  expect([...ours.outputs.keys()].sort()).toEqual([...reference.keys()].sort());
  for (const [name, tensor] of reference) expectClose(name, ours.outputs.get(name), tensor);
}
