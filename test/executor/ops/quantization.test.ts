/**
 * QuantizeLinear, DequantizeLinear (per tensor, per axis, blocked; opsets 10, 13, 19, 21),
 * DynamicQuantizeLinear, MatMulInteger, QLinearMatMul, ConvInteger and QLinearConv against
 * onnxruntime's CPU provider on fresh random inputs of odd sizes, UINT8 and INT8, every element
 * compared exactly (halves rounding to even and values beyond the range saturating included).
 */
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import type { Datatype, TypedArray } from '../../../services/onnx/datatypes.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const ORT_TYPES: Partial<Record<Datatype, ort.Tensor.Type>> = { FP32: 'float32', UINT8: 'uint8', INT8: 'int8', INT32: 'int32' };
const QUANTIZED_LIMITS: Partial<Record<Datatype, [number, number]>> = { UINT8: [0, 255], INT8: [-128, 127] };

const count = (shape: readonly number[]) => shape.reduce((total, dim) => total * dim, 1);

function tensorOf(datatype: Datatype, shape: number[], values: ArrayLike<number>): HostTensor {
  const data: TypedArray = datatype === 'UINT8' ? Uint8Array.from(values) : datatype === 'INT8' ? Int8Array.from(values)
    : datatype === 'INT32' ? Int32Array.from(values) : Float32Array.from(values);
  return { datatype, shape, data };
}

const randomInts = (datatype: Datatype, shape: number[], low = QUANTIZED_LIMITS[datatype]![0], high = QUANTIZED_LIMITS[datatype]![1]) =>
  tensorOf(datatype, shape, Array.from({ length: count(shape) }, () => low + Math.floor(Math.random() * (high - low + 1))));

/** Floats around [-range, range] with a quarter exactly on a half step of `step` (the rounding ties). */
const randomFloats = (shape: number[], range: number, step = 1 / 16) => tensorOf('FP32', shape, Array.from({ length: count(shape) }, () =>
  (Math.random() < 0.25 ? (Math.floor(Math.random() * 2 * range / step) - range / step + 0.5) * step : (Math.random() * 2 - 1) * range)));

interface Case {
  op: string;
  inputs: Array<{ name: string; tensor: () => HostTensor }>;
  initializers?: Array<{ name: string; tensor: HostTensor }>;
  nodeInputs: string[];
  outputs: Array<{ name: string; datatype: Datatype }>;
  attributes?: Record<string, AttributeValue>;
  opset: number;
}

function buildModel(testCase: Case, sample: Map<string, HostTensor>): Uint8Array {
  const graph = new GraphBuilder(testCase.op.toLowerCase());
  for (const { name } of testCase.inputs) graph.input(name, sample.get(name)!.datatype, sample.get(name)!.shape);
  for (const { name, tensor } of testCase.initializers ?? []) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
  graph.node(testCase.op, testCase.nodeInputs, testCase.outputs.map((output) => output.name), testCase.attributes ?? {}, 'under_test');
  for (const { name, datatype } of testCase.outputs) graph.output(name, datatype, []);
  return graph.toBytes({ opset: testCase.opset });
}

async function runOrt(bytes: Uint8Array, feeds: Map<string, HostTensor>): Promise<Map<string, HostTensor>> {
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'] });
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, tensor] of feeds) ortFeeds[name] = new ort.Tensor(ORT_TYPES[tensor.datatype]!, tensor.data as Float32Array, tensor.shape);
  const results = await session.run(ortFeeds);
  await session.release();
  return new Map(Object.entries(results).map(([name, tensor]) => [name, { datatype: 'FP32', shape: [...tensor.dims], data: tensor.data as TypedArray }]));
}

/** Two rounds of fresh inputs through our executor and onnxruntime; every element must be equal. */
async function check(testCase: Case): Promise<void> {
  const first = new Map(testCase.inputs.map(({ name, tensor }) => [name, tensor()]));
  const bytes = buildModel(testCase, first);
  const model = await compileOnnxModel(gpu, bytes, { isolate: false });
  try {
    for (let round = 0; round < 2; round++) {
      const feeds = round === 0 ? first : new Map(testCase.inputs.map(({ name, tensor }) => [name, tensor()]));
      const [ours, reference] = await Promise.all([model.run(feeds), runOrt(bytes, feeds)]);
      for (const { name, datatype } of testCase.outputs) {
        const got = ours.outputs.get(name)!;
        const want = reference.get(name)!;
        expect(got.datatype, `datatype of ${name}`).toBe(datatype);
        expect(got.shape, `shape of ${name}`).toEqual(want.shape);
        expect(Array.from(got.data as ArrayLike<number>), `values of ${name}`).toEqual(Array.from(want.data as ArrayLike<number>));
      }
    }
  } finally {
    model.dispose();
  }
}

const constant = (name: string, datatype: Datatype, shape: number[], values: number[]) => ({ name, tensor: tensorOf(datatype, shape, values) });
const positiveScales = (length: number) => Array.from({ length }, (_, index) => [0.0625, 0.125, 0.03125, 0.25][index % 4]);

describe('QuantizeLinear', () => {
  for (const [datatype, zero] of [['UINT8', 128], ['INT8', -3]] as const) {
    for (const opset of [10, 13, 19, 21]) {
      it(`per tensor to ${datatype}, opset ${opset}`, () => check({
        op: 'QuantizeLinear', opset, inputs: [{ name: 'x', tensor: () => randomFloats([3, 5, 7], 12) }],
        initializers: [constant('s', 'FP32', [], [0.0625]), constant('z', datatype, [], [zero])], nodeInputs: ['x', 's', 'z'],
        outputs: [{ name: 'y', datatype }],
      }));
    }
    it(`per axis to ${datatype}, opset 13`, () => check({
      op: 'QuantizeLinear', opset: 13, attributes: { axis: 1 }, inputs: [{ name: 'x', tensor: () => randomFloats([2, 5, 3], 20) }],
      initializers: [constant('s', 'FP32', [5], positiveScales(5)), constant('z', datatype, [5], [zero, 0, 1, zero, 2])], nodeInputs: ['x', 's', 'z'],
      outputs: [{ name: 'y', datatype }],
    }));
  }
  it('without a zero point (UINT8, 0)', () => check({
    op: 'QuantizeLinear', opset: 13, inputs: [{ name: 'x', tensor: () => randomFloats([9], 10) }],
    initializers: [constant('s', 'FP32', [], [0.125])], nodeInputs: ['x', 's'], outputs: [{ name: 'y', datatype: 'UINT8' }],
  }));
  it('blocks of 3 along axis 2, opset 21', () => check({
    op: 'QuantizeLinear', opset: 21, attributes: { axis: 2, block_size: 3 }, inputs: [{ name: 'x', tensor: () => randomFloats([2, 3, 7], 8) }],
    initializers: [constant('s', 'FP32', [2, 3, 3], positiveScales(18)), constant('z', 'INT8', [2, 3, 3], Array.from({ length: 18 }, (_, index) => index - 9))],
    nodeInputs: ['x', 's', 'z'], outputs: [{ name: 'y', datatype: 'INT8' }],
  }));
});

describe('DequantizeLinear', () => {
  for (const datatype of ['UINT8', 'INT8'] as const) {
    for (const opset of [10, 13, 21]) {
      it(`per tensor from ${datatype}, opset ${opset}`, () => check({
        op: 'DequantizeLinear', opset, inputs: [{ name: 'x', tensor: () => randomInts(datatype, [4, 3, 5]) }],
        initializers: [constant('s', 'FP32', [], [0.037]), constant('z', datatype, [], [datatype === 'UINT8' ? 131 : -7])], nodeInputs: ['x', 's', 'z'],
        outputs: [{ name: 'y', datatype: 'FP32' }],
      }));
    }
    it(`per axis from ${datatype}, opset 13`, () => check({
      op: 'DequantizeLinear', opset: 13, attributes: { axis: 0 }, inputs: [{ name: 'x', tensor: () => randomInts(datatype, [3, 7]) }],
      initializers: [constant('s', 'FP32', [3], [0.1, 0.013, 2.5]), constant('z', datatype, [3], [1, 0, 5])], nodeInputs: ['x', 's', 'z'],
      outputs: [{ name: 'y', datatype: 'FP32' }],
    }));
  }
  it('from INT32 without a zero point', () => check({
    op: 'DequantizeLinear', opset: 13, inputs: [{ name: 'x', tensor: () => randomInts('INT32', [11], -100000, 100000) }],
    initializers: [constant('s', 'FP32', [], [0.0007])], nodeInputs: ['x', 's'], outputs: [{ name: 'y', datatype: 'FP32' }],
  }));
  it('blocks of 4 along axis 0, opset 21', () => check({
    op: 'DequantizeLinear', opset: 21, attributes: { axis: 0, block_size: 4 }, inputs: [{ name: 'x', tensor: () => randomInts('UINT8', [9, 2]) }],
    initializers: [constant('s', 'FP32', [3, 2], [0.5, 0.25, 0.1, 0.3, 1.5, 0.01]), constant('z', 'UINT8', [3, 2], [0, 10, 20, 30, 128, 255])],
    nodeInputs: ['x', 's', 'z'], outputs: [{ name: 'y', datatype: 'FP32' }],
  }));
  it('folded on the host from an initializer', () => check({
    op: 'DequantizeLinear', opset: 13, inputs: [],
    initializers: [constant('x', 'INT8', [5], [-128, -1, 0, 1, 127]), constant('s', 'FP32', [], [0.3]), constant('z', 'INT8', [], [2])],
    nodeInputs: ['x', 's', 'z'], outputs: [{ name: 'y', datatype: 'FP32' }],
  }));
});

describe('DynamicQuantizeLinear', () => {
  for (const [shape, range] of [[[4, 7], 3], [[1000], 50], [[3, 5], -1]] as const) {
    it(`[${shape}]${range < 0 ? ' all positive' : ''}`, () => check({
      op: 'DynamicQuantizeLinear', opset: 11,
      inputs: [{ name: 'x', tensor: () => (range < 0 ? tensorOf('FP32', [...shape], Array.from({ length: count(shape) }, () => 1 + Math.random())) : randomFloats([...shape], range)) }],
      nodeInputs: ['x'], outputs: [{ name: 'y', datatype: 'UINT8' }, { name: 'y_scale', datatype: 'FP32' }, { name: 'y_zero_point', datatype: 'UINT8' }],
    }));
  }
});

describe('MatMulInteger', () => {
  for (const [a, b, aType, bType] of [[[2, 3, 5, 7], [7, 6], 'UINT8', 'UINT8'], [[5, 9], [9, 11], 'UINT8', 'INT8'], [[3, 1, 2, 4], [2, 4, 3], 'INT8', 'INT8']] as const) {
    it(`${aType} [${a}] x ${bType} [${b}]`, () => check({
      op: 'MatMulInteger', opset: 10, inputs: [{ name: 'a', tensor: () => randomInts(aType, [...a]) }, { name: 'b', tensor: () => randomInts(bType, [...b]) }],
      initializers: [constant('az', aType, [], [aType === 'UINT8' ? 120 : -4]), b.length === 2
        ? constant('bz', bType, [b[1]], Array.from({ length: b[1] }, (_, index) => index - 2)) : constant('bz', bType, [], [5])],
      nodeInputs: ['a', 'b', 'az', 'bz'], outputs: [{ name: 'y', datatype: 'INT32' }],
    }));
  }
  it('without zero points', () => check({
    op: 'MatMulInteger', opset: 10, inputs: [{ name: 'a', tensor: () => randomInts('UINT8', [3, 13]) }, { name: 'b', tensor: () => randomInts('UINT8', [13, 5]) }],
    nodeInputs: ['a', 'b'], outputs: [{ name: 'y', datatype: 'INT32' }],
  }));
});

describe('QLinearMatMul', () => {
  for (const opset of [10, 21]) {
    for (const [outType, perColumn] of [['UINT8', false], ['INT8', true]] as const) {
      it(`to ${outType}${perColumn ? ', per-column B scale' : ''}, opset ${opset}`, () => check({
        op: 'QLinearMatMul', opset, inputs: [{ name: 'a', tensor: () => randomInts(outType, [2, 5, 9]) }, { name: 'b', tensor: () => randomInts(outType, [9, 11]) }],
        initializers: [
          constant('as', 'FP32', [], [0.02]), constant('az', outType, [], [outType === 'UINT8' ? 128 : -5]),
          constant('bs', 'FP32', perColumn ? [11] : [], perColumn ? Array.from({ length: 11 }, (_, index) => 0.01 + index * 0.003) : [0.013]),
          constant('bz', outType, [], [outType === 'UINT8' ? 100 : 0]), constant('ys', 'FP32', [], [0.35]), constant('yz', outType, [], [outType === 'UINT8' ? 125 : 3]),
        ],
        nodeInputs: ['a', 'as', 'az', 'b', 'bs', 'bz', 'ys', 'yz'], outputs: [{ name: 'y', datatype: outType }],
      }));
    }
  }
});

describe('ConvInteger and QLinearConv', () => {
  it('ConvInteger [1, 3, 7, 6] * [4, 3, 3, 2], pads and strides', () => check({
    op: 'ConvInteger', opset: 10, attributes: { pads: [1, 0, 1, 1], strides: [2, 1] },
    inputs: [{ name: 'x', tensor: () => randomInts('UINT8', [1, 3, 7, 6]) }, { name: 'w', tensor: () => randomInts('UINT8', [4, 3, 3, 2]) }],
    initializers: [constant('xz', 'UINT8', [], [117]), constant('wz', 'UINT8', [], [3])], nodeInputs: ['x', 'w', 'xz', 'wz'],
    outputs: [{ name: 'y', datatype: 'INT32' }],
  }));
  it('ConvInteger 1-D, auto_pad SAME_UPPER', () => check({
    op: 'ConvInteger', opset: 10, attributes: { auto_pad: 'SAME_UPPER' },
    inputs: [{ name: 'x', tensor: () => randomInts('UINT8', [2, 2, 11]) }, { name: 'w', tensor: () => randomInts('UINT8', [3, 2, 4]) }],
    nodeInputs: ['x', 'w'], outputs: [{ name: 'y', datatype: 'INT32' }],
  }));
  it('ConvInteger 1-D, dilated', () => check({
    op: 'ConvInteger', opset: 10, attributes: { dilations: [2], pads: [2, 1] },
    inputs: [{ name: 'x', tensor: () => randomInts('UINT8', [2, 2, 11]) }, { name: 'w', tensor: () => randomInts('UINT8', [3, 2, 3]) }],
    nodeInputs: ['x', 'w'], outputs: [{ name: 'y', datatype: 'INT32' }],
  }));
  it('QLinearConv UINT8 x, INT8 weights per channel, group 2, bias', () => check({
    op: 'QLinearConv', opset: 10, attributes: { group: 2, pads: [1, 1, 1, 1] },
    inputs: [{ name: 'x', tensor: () => randomInts('UINT8', [2, 4, 6, 5]) }],
    initializers: [
      constant('xs', 'FP32', [], [0.05]), constant('xz', 'UINT8', [], [130]),
      { name: 'w', tensor: randomInts('INT8', [6, 2, 3, 3]) }, constant('ws', 'FP32', [6], [0.01, 0.02, 0.015, 0.03, 0.007, 0.011]),
      constant('wz', 'INT8', [], [0]), constant('ys', 'FP32', [], [0.2]), constant('yz', 'UINT8', [], [120]),
      { name: 'bias', tensor: randomInts('INT32', [6], -3000, 3000) },
    ],
    nodeInputs: ['x', 'xs', 'xz', 'w', 'ws', 'wz', 'ys', 'yz', 'bias'], outputs: [{ name: 'y', datatype: 'UINT8' }],
  }));
  it('ConvInteger 3-D, grouped', () => check({
    op: 'ConvInteger', opset: 10, attributes: { group: 2, pads: [0, 1, 1, 1, 0, 1] },
    inputs: [{ name: 'x', tensor: () => randomInts('UINT8', [1, 4, 3, 5, 4]) }, { name: 'w', tensor: () => randomInts('UINT8', [2, 2, 2, 3, 2]) }],
    initializers: [constant('xz', 'UINT8', [], [9])], nodeInputs: ['x', 'w', 'xz'], outputs: [{ name: 'y', datatype: 'INT32' }],
  }));
  it('QLinearConv UINT8 weights, strides, no bias', () => check({
    op: 'QLinearConv', opset: 10, attributes: { strides: [2, 2] },
    inputs: [{ name: 'x', tensor: () => randomInts('UINT8', [1, 3, 9, 7]) }, { name: 'w', tensor: () => randomInts('UINT8', [5, 3, 2, 3]) }],
    initializers: [
      constant('xs', 'FP32', [], [0.04]), constant('xz', 'UINT8', [], [128]), constant('ws', 'FP32', [], [0.02]),
      constant('wz', 'UINT8', [], [127]), constant('ys', 'FP32', [], [0.5]), constant('yz', 'UINT8', [], [128]),
    ],
    nodeInputs: ['x', 'xs', 'xz', 'w', 'ws', 'wz', 'ys', 'yz'], outputs: [{ name: 'y', datatype: 'UINT8' }],
  }));
});
