/**
 * Every tensor type in and out of the executor against onnxruntime (CPU): an input of each type
 * through Identity, a Cast round trip, arithmetic with a constant of its type and a comparison,
 * on fresh random values, with rows and with zero rows. Integers and booleans must match
 * exactly; floats within their type's rounding (the GPU computes FP64, FP16 and BF16 in f32).
 * Also: integer arithmetic wraps at the output as ONNX's does, values the GPU cannot hold are
 * refused INVALID_ARGUMENT naming the input, the value and its index.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel, type CompiledModel } from '../../../services/executor/runtime/index.ts';
import { fromNumbers } from '../../../services/executor/tensor/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import { onnxCodeOf, type Datatype } from '../../../services/onnx/datatypes.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { BOUNDARY_TYPES, expectTypedClose, runOrtTyped, VIA_FP32, widened, type BoundaryType } from './typed-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const FLOATS: ReadonlySet<Datatype> = new Set(['FP16', 'BF16', 'FP32', 'FP64']);
const UNSIGNED: ReadonlySet<Datatype> = new Set(['UINT8', 'UINT16', 'UINT32', 'UINT64']);

/** Random values of `datatype`: floats in [-8, 8) at full precision, integers small enough that x + c stays in range. */
function randomOf(datatype: Datatype, shape: number[]): HostTensor {
  const count = shape.reduce((total, dim) => total * dim, 1);
  if (datatype === 'BOOL') return fromNumbers('BOOL', shape, Array.from({ length: count }, () => (Math.random() < 0.5 ? 1 : 0)));
  if (FLOATS.has(datatype)) return fromNumbers(datatype, shape, Array.from({ length: count }, () => Math.random() * 16 - 8));
  const low = UNSIGNED.has(datatype) ? 0 : -60;
  return fromNumbers(datatype, shape, Array.from({ length: count }, () => low + Math.floor(Math.random() * 61)));
}

/**
 * y = Identity(x); round = Cast(Cast(x, FP32 or INT32), T); and for numbers sum = x + c and
 * greater = x > c, for booleans sum = x AND c and greater = NOT x; with c a constant of T.
 */
function typedModel(datatype: Datatype, constant: HostTensor): Uint8Array {
  const via = FLOATS.has(datatype) ? 'FP32' : datatype === 'BOOL' ? 'INT32' : 'FP32';
  const graph = new GraphBuilder(`typed_${datatype.toLowerCase()}`).input('x', datatype, [-1, 5]);
  graph.initializer('c', datatype, [5], constant.data);
  graph.node('Identity', ['x'], ['y'])
    .node('Cast', ['x'], ['wide'], { to: onnxCodeOf(via) }).node('Cast', ['wide'], ['round'], { to: onnxCodeOf(datatype) });
  if (datatype === 'BOOL') graph.node('And', ['x', 'c'], ['sum']).node('Not', ['x'], ['greater']);
  else graph.node('Add', ['x', 'c'], ['sum']).node('Greater', ['x', 'c'], ['greater']);
  return graph.output('y', datatype, [-1, 5]).output('round', datatype, [-1, 5]).output('sum', datatype, [-1, 5]).output('greater', 'BOOL', [-1, 5])
    .toBytes({ opset: 21 });
}

async function withModel(bytes: Uint8Array, body: (model: CompiledModel) => Promise<void>): Promise<void> {
  const model = await compileOnnxModel(gpu, bytes, { isolate: false });
  try {
    await body(model);
  } finally {
    model.dispose();
  }
}

describe.each(BOUNDARY_TYPES)('%s in and out', (datatype: BoundaryType) => {
  it('matches onnxruntime with rows and with zero rows', async () => {
    const constant = randomOf(datatype, [5]);
    // FP16 / BF16: onnxruntime-node runs the same graph in FP32 on the widened values.
    const twin = VIA_FP32.has(datatype);
    const reference = twin ? typedModel('FP32', widened(constant)) : typedModel(datatype, constant);
    await withModel(typedModel(datatype, constant), async (model) => {
      for (const rows of [3, 0, 7]) {
        const x = randomOf(datatype, [rows, 5]);
        const [ours, expected] = await Promise.all([model.run(new Map([['x', x]])), runOrtTyped(reference, new Map([['x', twin ? widened(x) : x]]))]);
        for (const name of ['y', 'round', 'sum']) expectTypedClose(name, datatype, ours.outputs.get(name), expected.get(name)!);
        expectTypedClose('greater', 'BOOL', ours.outputs.get('greater'), expected.get('greater')!);
      }
    });
  });
});

/** x + c as one Add node over `datatype`. */
const addModel = (datatype: Datatype) => new GraphBuilder('add').input('x', datatype, [-1]).input('c', datatype, [-1])
  .node('Add', ['x', 'c'], ['y']).output('y', datatype, [-1]).toBytes({ opset: 21 });

describe('integer edges', () => {
  it.each<[Datatype, number[], number[]]>([
    ['UINT8', [200, 255, 0], [100, 1, 0]],
    ['INT8', [100, -128, 127], [100, -1, 1]],
    ['UINT16', [65535, 40000], [1, 30000]],
    ['INT16', [32767, -32768], [1, -1]],
    ['UINT32', [0x7fff_ffff, 5], [0, 0x7fff_fffa]],
  ])('%s sums wrap at the output exactly as onnxruntime wraps them', async (datatype, left, right) => {
    const inputs = new Map([['x', fromNumbers(datatype, [left.length], left)], ['c', fromNumbers(datatype, [right.length], right)]]);
    await withModel(addModel(datatype), async (model) => {
      const [ours, expected] = await Promise.all([model.run(inputs), runOrtTyped(addModel(datatype), inputs)]);
      expectTypedClose('y', datatype, ours.outputs.get('y'), expected.get('y')!);
    });
  });

  it('round-trips the ends of every integer type the GPU holds exactly', async () => {
    const ends: Array<[Datatype, Array<number | bigint>]> = [
      ['INT8', [-128, 127]], ['UINT8', [0, 255]], ['INT16', [-32768, 32767]], ['UINT16', [0, 65535]],
      ['INT32', [-(2 ** 31), 2 ** 31 - 1]], ['UINT32', [0, 2 ** 31 - 1]], ['INT64', [-(2n ** 31n), 2n ** 31n - 1n]], ['UINT64', [0n, 2n ** 31n - 1n]],
    ];
    for (const [datatype, values] of ends) {
      const graph = new GraphBuilder('ends').input('x', datatype, [2]).node('Neg', ['x'], ['n']).node('Neg', ['n'], ['y']).output('y', datatype, [2]);
      // Neg is for signed types; an unsigned one goes through Identity.
      const bytes = UNSIGNED.has(datatype)
        ? new GraphBuilder('ends').input('x', datatype, [2]).node('Identity', ['x'], ['y']).output('y', datatype, [2]).toBytes({ opset: 21 })
        : graph.toBytes({ opset: 21 });
      const x = datatype.endsWith('64') ? { datatype, shape: [2], data: datatype === 'INT64' ? BigInt64Array.from(values, BigInt) : BigUint64Array.from(values, BigInt) }
        : fromNumbers(datatype, [2], values.map(Number));
      await withModel(bytes, async (model) => {
        const ours = await model.run(new Map([['x', x as HostTensor]]));
        expect(Array.from(ours.outputs.get('y')!.data as ArrayLike<number | bigint>, String), datatype).toEqual(values.map(String));
      });
    }
  });
});

describe('values the GPU cannot compute are refused', () => {
  const refusal = async (bytes: Uint8Array, x: HostTensor): Promise<NexusError> => {
    let thrown: unknown;
    await withModel(bytes, async (model) => { thrown = await model.run(new Map([['x', x]])).then(() => undefined, (error: unknown) => error); });
    expect(thrown).toBeInstanceOf(NexusError);
    expect((thrown as NexusError).code).toBe(ErrorCode.INVALID_ARGUMENT);
    return thrown as NexusError;
  };
  const identity = (datatype: Datatype) => new GraphBuilder('id').input('x', datatype, [-1]).node('Identity', ['x'], ['y']).output('y', datatype, [-1]).toBytes({ opset: 21 });

  it.each<[Datatype, HostTensor, string]>([
    ['INT64', { datatype: 'INT64', shape: [3], data: BigInt64Array.of(1n, 2n ** 31n, 3n) }, "'x' holds 2147483648 at index 1 (INT64), beyond the 32-bit integers the GPU computes with"],
    ['INT64', { datatype: 'INT64', shape: [1], data: BigInt64Array.of(-(2n ** 62n) - 3n) }, "'x' holds -4611686018427387907 at index 0 (INT64)"],
    ['UINT64', { datatype: 'UINT64', shape: [2], data: BigUint64Array.of(0n, 2n ** 64n - 1n) }, "'x' holds 18446744073709551615 at index 1 (UINT64)"],
    ['UINT32', { datatype: 'UINT32', shape: [2], data: Uint32Array.of(2 ** 31, 0) }, "'x' holds 2147483648 at index 0 (UINT32)"],
    ['FP64', { datatype: 'FP64', shape: [2], data: Float64Array.of(1, 1e300) }, "'x' holds 1e+300 at index 1, beyond the f32 range"],
  ])('%s %#', async (datatype, x, message) => {
    expect((await refusal(identity(datatype), x)).message).toContain(message);
  });

  it('keeps FP64 infinities and NaN, which f32 holds', async () => {
    await withModel(identity('FP64'), async (model) => {
      const ours = await model.run(new Map([['x', { datatype: 'FP64', shape: [3], data: Float64Array.of(Infinity, -Infinity, NaN) } as HostTensor]]));
      expect(Array.from(ours.outputs.get('y')!.data as Float64Array)).toEqual([Infinity, -Infinity, NaN]);
    });
  });
});
