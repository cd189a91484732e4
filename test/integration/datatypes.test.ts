/**
 * Tensor types through a running router and executor: UINT8, INT16, FP64 and UINT32 inputs in
 * typed and raw contents, FP16 and BF16 in raw contents, answered in their own types (integer
 * sums wrapping as ONNX's do, floats within f32's rounding); zero-length inputs ([0, n] rows and
 * an empty inner dim) answered with empty outputs of the right shapes; a UINT32 value the GPU
 * cannot hold refused INVALID_ARGUMENT naming the input.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../services/onnx/index.ts';
import type { InferTensorContents, ModelInferRequest, ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;

const U8_OFFSET = Uint8Array.of(100, 200, 0, 255);
const I16_OFFSET = Int16Array.of(-1000, 7, 30000);
const F64_SCALE = Float64Array.of(0.1, -3.000000001, 1e-5);

beforeAll(async () => {
  cluster = await startCluster();
  // u8 + offset (UINT8, wraps), u8 as FP32 halves, i16 + offset (INT16), f64 * scale (FP64), u32 as is; all batched along dim 0.
  const types = new GraphBuilder('types')
    .input('u8', 'UINT8', [-1, 4]).input('i16', 'INT16', [-1, 3]).input('f64', 'FP64', [-1, 3]).input('u32', 'UINT32', [-1, 2])
    .initializer('u8_offset', 'UINT8', [4], U8_OFFSET).initializer('i16_offset', 'INT16', [3], I16_OFFSET)
    .initializer('f64_scale', 'FP64', [3], F64_SCALE).initializer('half', 'FP32', [], Float32Array.of(0.5))
    .node('Add', ['u8', 'u8_offset'], ['u8_sum']).node('Cast', ['u8'], ['u8_float'], { to: 1 }).node('Mul', ['u8_float', 'half'], ['u8_halves'])
    .node('Add', ['i16', 'i16_offset'], ['i16_sum']).node('Mul', ['f64', 'f64_scale'], ['f64_product']).node('Identity', ['u32'], ['u32_echo'])
    .output('u8_sum', 'UINT8', [-1, 4]).output('u8_halves', 'FP32', [-1, 4]).output('i16_sum', 'INT16', [-1, 3])
    .output('f64_product', 'FP64', [-1, 3]).output('u32_echo', 'UINT32', [-1, 2]);
  await cluster.store('types', types.toBytes({ opset: 21 }));
  // FP16 x + 1 computed in f32 and rounded back; BF16 and an inner dim that may be empty, as is.
  const halves = new GraphBuilder('halves').input('h', 'FP16', [-1, 2]).input('b', 'BF16', [-1, -1])
    .initializer('one', 'FP16', [], Uint16Array.of(0x3c00))
    .node('Add', ['h', 'one'], ['h_plus_one']).node('Identity', ['b'], ['b_echo'])
    .output('h_plus_one', 'FP16', [-1, 2]).output('b_echo', 'BF16', [-1, -1]);
  await cluster.store('halves', halves.toBytes({ opset: 21 }));
  await cluster.waitUntilReady('types');
  await cluster.waitUntilReady('halves');
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

const contents = (fields: Partial<InferTensorContents>): InferTensorContents => ({ ...fp32Contents([]), ...fields });
const input = (name: string, datatype: string, shape: number[], typed?: Partial<InferTensorContents>) =>
  ({ name, datatype, shape, parameters: {}, contents: typed ? contents(typed) : undefined });

interface TypesRows { u8: number[]; i16: number[]; f64: number[]; u32: number[] }
const typedRequest = (rows: number, values: TypesRows): Partial<ModelInferRequest> => ({
  modelName: 'types',
  inputs: [
    input('u8', 'UINT8', [rows, 4], { uintContents: values.u8 }), input('i16', 'INT16', [rows, 3], { intContents: values.i16 }),
    input('f64', 'FP64', [rows, 3], { fp64Contents: values.f64 }), input('u32', 'UINT32', [rows, 2], { uintContents: values.u32 }),
  ],
});
const rawRequest = (rows: number, values: TypesRows): Partial<ModelInferRequest> => ({
  modelName: 'types',
  inputs: [input('u8', 'UINT8', [rows, 4]), input('i16', 'INT16', [rows, 3]), input('f64', 'FP64', [rows, 3]), input('u32', 'UINT32', [rows, 2])],
  rawInputContents: [Uint8Array.from(values.u8), new Uint8Array(Int16Array.from(values.i16).buffer),
    new Uint8Array(Float64Array.from(values.f64).buffer), new Uint8Array(Uint32Array.from(values.u32).buffer)],
});

const randomInts = (count: number, low: number, high: number) => Array.from({ length: count }, () => low + Math.floor(Math.random() * (high - low + 1)));
const randomRows = (rows: number): TypesRows => ({
  u8: randomInts(rows * 4, 0, 255), i16: randomInts(rows * 3, -2000, 2000),
  f64: Array.from({ length: rows * 3 }, () => (Math.random() - 0.5) * 1e4), u32: randomInts(rows * 2, 0, 2 ** 31 - 1),
});

/** What the model computes, exactly for integers (UINT8 wrapping modulo 256), in float64 for floats. */
function expected(values: TypesRows) {
  return {
    u8_sum: values.u8.map((value, index) => (value + U8_OFFSET[index % 4]) % 256),
    u8_halves: values.u8.map((value) => value / 2),
    i16_sum: values.i16.map((value, index) => value + I16_OFFSET[index % 3]),
    f64_product: values.f64.map((value, index) => value * F64_SCALE[index % 3]),
    u32_echo: values.u32,
  };
}

/** Output values of a response by name, from typed or raw contents. */
function outputsOf(response: ModelInferResponse): Record<string, { datatype: string; shape: number[]; values: number[] }> {
  const raw = response.rawOutputContents.length > 0;
  return Object.fromEntries(response.outputs.map((output, index) => {
    let values: number[];
    if (raw) {
      const bytes = new Uint8Array(response.rawOutputContents[index]).slice();
      const view = { UINT8: Uint8Array, INT16: Int16Array, FP32: Float32Array, FP64: Float64Array, UINT32: Uint32Array }[output.datatype as 'UINT8']!;
      values = Array.from(new view(bytes.buffer));
    } else {
      const typed = output.contents!;
      values = [...typed.uintContents, ...typed.intContents, ...typed.fp32Contents, ...typed.fp64Contents].map(Number);
    }
    return [output.name, { datatype: output.datatype, shape: output.shape.map(Number), values }];
  }));
}

function expectAnswer(response: ModelInferResponse, rows: number, values: TypesRows): void {
  const outputs = outputsOf(response);
  const want = expected(values);
  expect(Object.fromEntries(Object.entries(outputs).map(([name, output]) => [name, [output.datatype, output.shape]]))).toEqual({
    u8_sum: ['UINT8', [rows, 4]], u8_halves: ['FP32', [rows, 4]], i16_sum: ['INT16', [rows, 3]], f64_product: ['FP64', [rows, 3]], u32_echo: ['UINT32', [rows, 2]],
  });
  expect(outputs.u8_sum.values).toEqual(want.u8_sum);
  expect(outputs.u8_halves.values).toEqual(want.u8_halves);
  expect(outputs.i16_sum.values).toEqual(want.i16_sum);
  expect(outputs.u32_echo.values).toEqual(want.u32_echo);
  // FP64 is computed in f32: each input and the product rounded to f32 (relative error ~1e-7).
  outputs.f64_product.values.forEach((value, index) => {
    expect(Math.abs(value - want.f64_product[index]), `f64_product[${index}]`).toBeLessThanOrEqual(3e-7 * Math.abs(want.f64_product[index]) + 1e-30);
  });
}

describe('UINT8, INT16, FP64 and UINT32 through the router', () => {
  it.each([1, 3])('typed contents, %i rows', async (rows) => {
    const values = randomRows(rows);
    expectAnswer(await cluster.infer(typedRequest(rows, values)), rows, values);
  });

  it('raw contents answered in raw contents', async () => {
    const values = randomRows(4);
    const response = await cluster.infer(rawRequest(4, values));
    expect(response.rawOutputContents).toHaveLength(5);
    expectAnswer(response, 4, values);
  });

  it('zero rows, typed and raw: empty outputs of the right shapes', async () => {
    const empty: TypesRows = { u8: [], i16: [], f64: [], u32: [] };
    expectAnswer(await cluster.infer(typedRequest(0, empty)), 0, empty);
    const raw = await cluster.infer(rawRequest(0, empty));
    expect(raw.rawOutputContents.map((bytes) => bytes.byteLength)).toEqual([0, 0, 0, 0, 0]);
    expectAnswer(raw, 0, empty);
  });

  it('refuses a UINT32 value beyond the 32-bit integers the GPU computes with, naming the input', async () => {
    const values = { ...randomRows(1), u32: [2 ** 31, 1] };
    const error = await cluster.infer(typedRequest(1, values)).then(() => undefined, (failed: ServiceError) => failed);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/'u32' holds 2147483648 at index 0 \(UINT32\), beyond the 32-bit integers the GPU computes with/);
  });

  it('refuses a negative dim, still', async () => {
    const request = typedRequest(1, randomRows(1));
    request.inputs![0] = input('u8', 'UINT8', [-1, 4], { uintContents: [] });
    const error = await cluster.infer(request).then(() => undefined, (failed: ServiceError) => failed);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/input 'u8' has shape \[-1,4\]/);
  });
});

describe('FP16 and BF16 in raw contents', () => {
  const f16 = (values: number[]) => new Uint8Array(Float16Array.from(values).buffer);

  it('answers FP16 x + 1 rounded to FP16 and BF16 as sent, with rows and with an empty inner dim', async () => {
    const h = [0.5, -2.25, 1000, 3.140625];
    const bf16 = Uint16Array.of(0x3f80, 0xc040, 0x4049, 0x0000, 0x7f80, 0xff80);
    const response = await cluster.infer({
      modelName: 'halves', inputs: [input('h', 'FP16', [2, 2]), input('b', 'BF16', [2, 3])], rawInputContents: [f16(h), new Uint8Array(bf16.buffer)],
    });
    expect(response.outputs.map((output) => [output.name, output.datatype, output.shape.map(Number)])).toEqual([['h_plus_one', 'FP16', [2, 2]], ['b_echo', 'BF16', [2, 3]]]);
    expect(Array.from(new Float16Array(new Uint8Array(response.rawOutputContents[0]).slice().buffer))).toEqual(h.map((value) => value + 1));
    expect(new Uint16Array(new Uint8Array(response.rawOutputContents[1]).slice().buffer)).toEqual(bf16);

    const empty = await cluster.infer({
      modelName: 'halves', inputs: [input('h', 'FP16', [1, 2]), input('b', 'BF16', [1, 0])], rawInputContents: [f16([7, 8]), new Uint8Array(0)],
    });
    expect(empty.outputs.map((output) => output.shape.map(Number))).toEqual([[1, 2], [1, 0]]);
    expect(empty.rawOutputContents[1].byteLength).toBe(0);
  });

  it('refuses FP16 in typed contents, which have no field for it', async () => {
    const error = await cluster.infer({ modelName: 'halves', inputs: [input('h', 'FP16', [1, 2], {}), input('b', 'BF16', [1, 1], {})] })
      .then(() => undefined, (failed: ServiceError) => failed);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/datatype FP16 has no typed contents field; send it in raw_input_contents/);
  });
});
