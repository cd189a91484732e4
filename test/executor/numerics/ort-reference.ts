/**
 * Shared by the numerics tests: random inputs, onnxruntime-node (CPU) as the reference, and the
 * per-dtype tolerance our GPU results must meet.
 */
import ort from 'onnxruntime-node';
import { expect } from 'vitest';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import type { CompiledModel } from '../../../services/executor/runtime/index.ts';

/**
 * FP32: |ours - ort| <= relative * |ort| + absolute. Different summation orders (tiled matmul,
 * tree reductions) and GPU exp/tanh differ from the CPU by a few ulps, far inside this.
 */
export const FP32_TOLERANCE = { relative: 1e-4, absolute: 1e-5 } as const;

/**
 * FP16 (fp16 storage mode: inputs, weights and intermediates stored as f16, arithmetic in f32):
 * |ours - ort| <= relative * max(|ort|, rms(ort)), rms over the whole output. Every stored value
 * is rounded to 11 significant bits (relative error up to 2^-11 ≈ 4.9e-4), so a dot product of K
 * rounded terms is off by about sqrt(K) * 4.9e-4 * |term| while the result itself is about
 * sqrt(K) * |term|: some 1e-3 of the output's scale per rounded layer, a few 1e-3 after several.
 * Outputs near zero (cancellation) keep that absolute error, so they are measured against the
 * output's scale (its RMS) rather than their own magnitude.
 */
export const FP16_TOLERANCE = { relative: 1e-2 } as const;

/** Uniform random values in [-scale, scale), fresh on every call. */
export function randomTensor(shape: readonly number[], scale = 1): HostTensor {
  const count = shape.reduce((product, dim) => product * dim, 1);
  return { datatype: 'FP32', shape: [...shape], data: Float32Array.from({ length: count }, () => (Math.random() * 2 - 1) * scale) };
}

/** Uniform random integers in [low, high], fresh on every call. */
export function randomIntegers(shape: readonly number[], low: number, high: number, datatype: 'INT64' | 'INT32' = 'INT64'): HostTensor {
  const count = shape.reduce((product, dim) => product * dim, 1);
  const values = Array.from({ length: count }, () => low + Math.floor(Math.random() * (high - low + 1)));
  const data = datatype === 'INT64' ? BigInt64Array.from(values, BigInt) : Int32Array.from(values);
  return { datatype, shape: [...shape], data };
}

/** Random booleans (about half true), fresh on every call. */
export function randomBooleans(shape: readonly number[]): HostTensor {
  const count = shape.reduce((product, dim) => product * dim, 1);
  return { datatype: 'BOOL', shape: [...shape], data: Uint8Array.from({ length: count }, () => (Math.random() < 0.5 ? 1 : 0)) };
}

/** onnxruntime's tensor type for each datatype the numerics tests feed or read back. */
const ORT_TYPES: Partial<Record<Datatype, ort.Tensor.Type>> = { FP32: 'float32', INT64: 'int64', INT32: 'int32', BOOL: 'bool' };

function datatypeOfOrt(type: ort.Tensor.Type): Datatype {
  const entry = Object.entries(ORT_TYPES).find(([, ortType]) => ortType === type);
  if (!entry) throw new Error(`onnxruntime returned a ${type} tensor, which the numerics tests do not compare`);
  return entry[0] as Datatype;
}

/** Runs `modelBytes` on onnxruntime's CPU provider. */
export async function runOrt(modelBytes: Uint8Array, inputs: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>> {
  const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['cpu'] });
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of inputs) {
    const type = ORT_TYPES[tensor.datatype];
    if (!type) throw new Error(`input '${name}' is ${tensor.datatype}, which runOrt does not feed`);
    feeds[name] = new ort.Tensor(type, tensor.data as ort.Tensor.DataTypeMap['float32'], tensor.shape);
  }
  const results = await session.run(feeds);
  await session.release();
  return new Map(Object.entries(results).map(([name, tensor]) => [
    name, { datatype: datatypeOfOrt(tensor.type), shape: [...tensor.dims], data: tensor.data as HostTensor['data'] },
  ]));
}

/**
 * Asserts same shape and every element within FP32_TOLERANCE (equal NaNs and infinities match),
 * reporting the worst element. Integer and boolean outputs must match exactly, datatype included.
 */
export function expectClose(name: string, ours: HostTensor | undefined, reference: HostTensor): void {
  expect(ours, `output '${name}' is missing`).toBeDefined();
  expect(ours!.shape, `shape of '${name}'`).toEqual(reference.shape);
  if (reference.datatype !== 'FP32') {
    expect(ours!.datatype, `datatype of '${name}'`).toBe(reference.datatype);
    expect(Array.from(ours!.data as ArrayLike<number | bigint>, Number), `values of '${name}'`)
      .toEqual(Array.from(reference.data as ArrayLike<number | bigint>, Number));
    return;
  }
  const got = ours!.data as Float32Array;
  const want = reference.data as Float32Array;
  expect(got.length, `element count of '${name}'`).toBe(want.length);
  let failures = 0;
  let worst = { index: -1, excess: 0 };
  for (let index = 0; index < want.length; index++) {
    if (got[index] === want[index] || (Number.isNaN(got[index]) && Number.isNaN(want[index]))) continue;
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

/** Runs `inputs` through our model and onnxruntime, compares every output and returns ours. */
export async function expectMatchesOrt(model: CompiledModel, modelBytes: Uint8Array, inputs: Map<string, HostTensor>): Promise<Map<string, HostTensor>> {
  const [ours, reference] = await Promise.all([model.run(inputs), runOrt(modelBytes, inputs)]);
  expect([...ours.outputs.keys()].sort()).toEqual([...reference.keys()].sort());
  for (const [name, tensor] of reference) expectClose(name, ours.outputs.get(name), tensor);
  return ours.outputs;
}

/**
 * Asserts same shape and every FP32 element within FP16_TOLERANCE of the reference (see there),
 * reporting the worst element; returns the largest error as a fraction of the output's RMS.
 */
export function expectCloseFp16(name: string, ours: HostTensor | undefined, reference: HostTensor): number {
  expect(ours, `output '${name}' is missing`).toBeDefined();
  expect(ours!.shape, `shape of '${name}'`).toEqual(reference.shape);
  const got = ours!.data as Float32Array;
  const want = reference.data as Float32Array;
  expect(got.length, `element count of '${name}'`).toBe(want.length);
  const rms = Math.sqrt(want.reduce((total, value) => total + value * value, 0) / Math.max(want.length, 1));
  let failures = 0;
  let worst = { index: -1, excess: 0 };
  let largest = 0;
  for (let index = 0; index < want.length; index++) {
    const error = Math.abs(got[index] - want[index]);
    const allowed = FP16_TOLERANCE.relative * Math.max(Math.abs(want[index]), rms);
    largest = Math.max(largest, Number.isNaN(error) ? Infinity : error / rms);
    // `!(error <= allowed)` also catches NaN.
    if (!(error <= allowed)) {
      failures++;
      const excess = Number.isNaN(error) ? Infinity : error / allowed;
      if (worst.index < 0 || excess > worst.excess) worst = { index, excess };
    }
  }
  const detail = worst.index < 0 ? '' :
    `; worst at ${worst.index}: ours ${got[worst.index]}, ort ${want[worst.index]} (${worst.excess.toFixed(1)}× the tolerance, output RMS ${rms})`;
  expect(failures, `elements of '${name}' outside the fp16 tolerance${detail}`).toBe(0);
  return largest;
}
