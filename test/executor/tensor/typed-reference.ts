/**
 * onnxruntime (CPU) as the reference for every tensor type the executor takes, and the per-type
 * comparison: integers and booleans exactly, floats within their type's rounding.
 * onnxruntime-node reads no BFLOAT16 tensors and (in 1.30) fails on FLOAT16 ones, so models of
 * those types are compared with their FP32 twin, rounded to the type.
 */
import ort from 'onnxruntime-node';
import { expect } from 'vitest';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { fromNumbers, toNumbers } from '../../../services/executor/tensor/index.ts';

/** Every type at the boundary, as the protocol names them. */
export const BOUNDARY_TYPES = ['BOOL', 'UINT8', 'INT8', 'UINT16', 'INT16', 'UINT32', 'INT32', 'UINT64', 'INT64', 'FP16', 'BF16', 'FP32', 'FP64'] as const;
export type BoundaryType = (typeof BOUNDARY_TYPES)[number];

const ORT_TYPES: Partial<Record<Datatype, ort.Tensor.Type>> = {
  BOOL: 'bool', UINT8: 'uint8', INT8: 'int8', UINT16: 'uint16', INT16: 'int16', UINT32: 'uint32', INT32: 'int32',
  UINT64: 'uint64', INT64: 'int64', FP32: 'float32', FP64: 'float64',
};

/** Types onnxruntime-node cannot feed here: the reference runs their FP32 twin. */
export const VIA_FP32: ReadonlySet<Datatype> = new Set(['FP16', 'BF16']);

/** Runs `modelBytes` on onnxruntime's CPU provider; every input's type must be one it reads. */
export async function runOrtTyped(modelBytes: Uint8Array, inputs: ReadonlyMap<string, HostTensor>): Promise<Map<string, HostTensor>> {
  const session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['cpu'] });
  try {
    const feeds: Record<string, ort.Tensor> = {};
    for (const [name, tensor] of inputs) {
      const type = ORT_TYPES[tensor.datatype];
      if (!type) throw new Error(`input '${name}' is ${tensor.datatype}, which onnxruntime-node does not read here`);
      feeds[name] = new ort.Tensor(type, tensor.data as ort.Tensor.DataTypeMap['float32'], tensor.shape);
    }
    const results = await session.run(feeds);
    return new Map(Object.entries(results).map(([name, tensor]) => {
      const entry = Object.entries(ORT_TYPES).find(([, type]) => type === tensor.type);
      if (!entry) throw new Error(`onnxruntime returned a ${tensor.type} tensor`);
      return [name, { datatype: entry[0] as Datatype, shape: [...tensor.dims], data: tensor.data as HostTensor['data'] }];
    }));
  } finally {
    await session.release();
  }
}

/** A tensor of a narrow float type widened to FP32 (exact), for the FP32 twin. */
export const widened = (tensor: HostTensor): HostTensor => fromNumbers('FP32', tensor.shape, toNumbers(tensor));

/**
 * Rounding of each float type as the executor computes it (f32), for values of magnitude up to
 * about 10: FP32 and FP64 results carry f32's error (FP64 inputs are rounded to f32 first, about
 * 5e-7 absolute at 8, which a sum that cancels keeps), FP16 and BF16 one rounding to their own
 * precision on top.
 */
const FLOAT_TOLERANCE: Partial<Record<Datatype, { relative: number; absolute: number }>> = {
  FP64: { relative: 1e-6, absolute: 3e-6 },
  FP32: { relative: 1e-5, absolute: 1e-6 },
  FP16: { relative: 2 ** -10, absolute: 1e-4 },
  BF16: { relative: 2 ** -7, absolute: 1e-3 },
};

/**
 * Asserts `ours` has `datatype`, the reference's shape, and values equal to the reference's
 * (integers and booleans exactly, as bigints for the 64-bit types), or within the float type's
 * rounding of it. A reference of another type (the FP32 twin) is compared by value.
 */
export function expectTypedClose(name: string, datatype: Datatype, ours: HostTensor | undefined, reference: HostTensor): void {
  expect(ours, `output '${name}' is missing`).toBeDefined();
  expect(ours!.datatype, `datatype of '${name}'`).toBe(datatype);
  expect(ours!.shape, `shape of '${name}'`).toEqual(reference.shape);
  const tolerance = FLOAT_TOLERANCE[datatype];
  if (!tolerance) {
    const exact = (tensor: HostTensor) => Array.from(tensor.data as ArrayLike<number | bigint>, (value) => BigInt(value));
    expect(exact(ours!), `values of '${name}'`).toEqual(exact(reference));
    return;
  }
  const got = toNumbers(ours!);
  const want = toNumbers(reference);
  const outside = want.flatMap((value, index) => {
    const error = Math.abs(got[index] - value);
    return got[index] === value || error <= tolerance.relative * Math.abs(value) + tolerance.absolute ? [] : [`${index}: ours ${got[index]}, reference ${value}`];
  });
  expect(outside, `elements of '${name}' outside the ${datatype} tolerance`).toEqual([]);
}
