/**
 * Element-wise operators, one node at a time, against onnxruntime on fresh random inputs: odd
 * sizes, broadcasting wherever ONNX broadcasts, every attribute branch, integer and boolean
 * tensors. Each op also runs folded on the host (all inputs constant), where the CPU
 * implementations compute it at load time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { float, GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, checkOneNode, expectRefused, fp32, int64, type InputSpec } from './one-node.ts';
import { randomBooleans, randomIntegers, randomTensor } from './ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** Uniform in [low, high). */
const uniform = (low: number, high: number) => (shape: number[]): HostTensor => {
  const tensor = randomTensor(shape, 1);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) data[index] = low + (data[index] + 1) / 2 * (high - low);
  return tensor;
};
/** Small whole numbers as floats, so comparisons see ties and Pow sees integral exponents. */
const wholeFloats = (low: number, high: number) => (shape: number[]): HostTensor => {
  const integers = randomIntegers(shape, low, high);
  return { datatype: 'FP32', shape, data: Float32Array.from(integers.data as BigInt64Array, Number) };
};
/** Multiples of 0.25 in [-0.5, 0.5]: a fifth are zero, so a cast to BOOL shows both values. */
const quarters = (shape: number[]): HostTensor => {
  const tensor = wholeFloats(-2, 2)(shape);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) data[index] *= 0.25;
  return tensor;
};
const ints = (low: number, high: number, datatype: 'INT64' | 'INT32' = 'INT64') => (shape: number[]) => randomIntegers(shape, low, high, datatype);

const input = (name: string, shape: number[], fill?: InputSpec['fill'], datatype?: Datatype): InputSpec => ({ name, shape, fill, datatype });

/** A single element, an odd 2-D shape and more than one workgroup (315 elements). */
const shapes: number[][] = [[1], [7, 13], [3, 5, 21]];

/**
 * `op` over initializers (fresh random values in every model) is folded at load by the CPU
 * implementations; adding a graph input keeps one GPU kernel that reads the folded value.
 */
async function checkFolded(
  op: string, constants: HostTensor[], outShape: number[], attributes: Record<string, AttributeValue> = {}, opset = 17, outType: Datatype = 'FP32',
): Promise<void> {
  const graph = new GraphBuilder(`folded_${op.toLowerCase()}`).input('x', 'FP32', outShape);
  constants.forEach((tensor, index) => graph.initializer(`c${index}`, tensor.datatype, tensor.shape, tensor.data));
  graph.node(op, constants.map((_, index) => `c${index}`), ['folded'], attributes);
  if (outType !== 'FP32') graph.node('Cast', ['folded'], ['as_float'], { to: 1 });
  graph.node('Add', ['x', outType === 'FP32' ? 'folded' : 'as_float'], ['y']);
  graph.output('y', 'FP32', outShape);
  await checkModelAgainstOrt(gpu, graph.toBytes({ opset }), [{ name: 'x', shape: outShape }], [{ name: 'y', shape: outShape }]);
}

/** The numpy broadcast of several shapes (an independent check of the executor's). */
function broadcast(...operands: number[][]): number[] {
  const rank = Math.max(0, ...operands.map((shape) => shape.length));
  return Array.from({ length: rank }, (_, dim) => {
    const sizes = operands.map((shape) => shape[dim - rank + shape.length] ?? 1);
    return sizes.includes(0) ? 0 : Math.max(...sizes);
  });
}

// ---------------------------------------------------------------------------------------------
// Unary

interface UnaryCase {
  attributes?: Record<string, AttributeValue>;
  /** Input values; default uniform in [-3, 3). */
  fill?: InputSpec['fill'];
  opset?: number;
  label?: string;
}

const UNARY_CASES: ReadonlyArray<[op: string, cases: UnaryCase[]]> = [
  ['Relu', [{}]],
  ['LeakyRelu', [{}, { attributes: { alpha: float(0.37) }, label: 'alpha 0.37' }]],
  ['Elu', [{}, { attributes: { alpha: float(0.6) }, label: 'alpha 0.6' }]],
  ['Selu', [{}, { attributes: { alpha: float(1.3), gamma: float(0.8) }, label: 'alpha 1.3, gamma 0.8' }]],
  // ±12 reaches both sigmoid branches and tanh's saturation.
  ['Sigmoid', [{ fill: uniform(-12, 12) }]],
  ['HardSigmoid', [{ fill: uniform(-6, 6) }, { attributes: { alpha: float(0.3), beta: float(0.4) }, fill: uniform(-6, 6), label: 'alpha 0.3, beta 0.4' }]],
  ['HardSwish', [{ fill: uniform(-5, 5) }]],
  ['Tanh', [{ fill: uniform(-12, 12) }]],
  ['Gelu', [
    { opset: 20, fill: uniform(-6, 6), label: "approximate 'none'" },
    { opset: 20, attributes: { approximate: 'tanh' }, fill: uniform(-6, 6), label: "approximate 'tanh'" },
  ]],
  ['Erf', [{ fill: uniform(-3, 3) }]],
  // Past 20 softplus is x; far below 0 it is exp(x).
  ['Softplus', [{ fill: uniform(-25, 25) }]],
  ['Sqrt', [{ fill: uniform(0, 50) }]],
  ['Exp', [{ fill: uniform(-10, 10) }]],
  ['Log', [{ fill: uniform(0.001, 100) }]],
  ['Neg', [{}]],
  ['Abs', [{}]],
  ['Reciprocal', [{ fill: uniform(-4, 4) }]],
  ['Floor', [{ fill: uniform(-5, 5) }]],
  ['Ceil', [{ fill: uniform(-5, 5) }]],
];

/** Integer inputs the GPU computes these on (onnxruntime has no INT64 Relu). */
const INTEGER_UNARY: Readonly<Record<string, 'INT64' | 'INT32'>> = { Abs: 'INT64', Neg: 'INT64', Relu: 'INT32' };

for (const [op, cases] of UNARY_CASES) {
  describe(op, () => {
    for (const { attributes, fill = uniform(-3, 3), opset, label } of cases) {
      it(`${label ? `${label}, ` : ''}shapes ${shapes.map((shape) => `[${shape}]`).join(' ')}`, async () => {
        for (const shape of shapes) await checkOneNode(gpu, { op, inputs: [input('x', shape, fill)], output: shape, attributes, opset });
      });
      it(`${label ? `${label}, ` : ''}folded on the host`, () => checkFolded(op, [fill([3, 5])], [3, 5], attributes, opset));
    }
    it('an empty input [0, 3]', () => checkOneNode(gpu, { op, inputs: [['x', [0, 3]]], output: [0, 3], opset: cases[0].opset }));
    const integer = INTEGER_UNARY[op];
    if (integer) {
      it(`on ${integer}`, () =>
        checkOneNode(gpu, { op, inputs: [input('x', [3, 11], ints(-1000, 1000, integer), integer)], outputs: [{ name: 'y', shape: [3, 11], datatype: integer }] }));
    }
    if (op === 'Sqrt' || op === 'Log') {
      it('negative numbers and zeros give NaN and -inf as ORT does', () =>
        checkOneNode(gpu, { op, inputs: [input('x', [6], () => fp32([-1, 0, -0.5, 4, 1e-30, -0]))], output: [6] }));
    }
  });
}

describe('Not', () => {
  it('on booleans', () =>
    checkOneNode(gpu, { op: 'Not', inputs: [input('x', [5, 7], randomBooleans, 'BOOL')], outputs: [{ name: 'y', shape: [5, 7], datatype: 'BOOL' }] }));
  it('folded on the host', () => checkFolded('Not', [randomBooleans([4, 5])], [4, 5], {}, 17, 'BOOL'));
});

describe('Clip', () => {
  it('opset 13 with min and max inputs', () =>
    checkOneNode(gpu, {
      op: 'Clip', inputs: [['x', [7, 9]]], output: [7, 9], opset: 13, scale: 3, nodeInputs: ['x', 'low', 'high'],
      initializers: [{ name: 'low', tensor: fp32([-0.75], []) }, { name: 'high', tensor: fp32([1.25], []) }],
    }));
  it('opset 13 with min omitted (empty name)', () =>
    checkOneNode(gpu, {
      op: 'Clip', inputs: [['x', [3, 17]]], output: [3, 17], opset: 13, scale: 3, nodeInputs: ['x', '', 'high'],
      initializers: [{ name: 'high', tensor: fp32([0.5], []) }],
    }));
  it('opset 13 with max omitted', () =>
    checkOneNode(gpu, {
      op: 'Clip', inputs: [['x', [33]]], output: [33], opset: 13, scale: 3, nodeInputs: ['x', 'low'],
      initializers: [{ name: 'low', tensor: fp32([-0.2], []) }],
    }));
  it('opset 13 with neither bound (the identity)', () =>
    checkOneNode(gpu, { op: 'Clip', inputs: [['x', [2, 3, 5]]], output: [2, 3, 5], opset: 13, scale: 1e30 }));
  it('opset 10 min / max attributes', () =>
    checkOneNode(gpu, { op: 'Clip', inputs: [['x', [5, 5]]], output: [5, 5], opset: 10, scale: 10, attributes: { min: float(-6), max: float(6) } }));
  it('folded on the host', () => checkFolded('Clip', [uniform(-3, 3)([3, 5]), fp32([-1], []), fp32([2], [])], [3, 5], {}, 13));
  it('a bound given as a graph input, read from the request', () =>
    checkOneNode(gpu, { op: 'Clip', inputs: [['x', [3, 5]], ['low', []]], output: [3, 5], opset: 13 }));
});

describe('Cast', () => {
  const cases: Array<[from: Datatype, to: Datatype, fill: InputSpec['fill']]> = [
    // Whole and fractional values of both signs: conversion to integers truncates towards zero.
    ['FP32', 'INT64', uniform(-100, 100)],
    ['FP32', 'INT32', uniform(-100, 100)],
    ['FP32', 'BOOL', quarters],
    ['INT64', 'FP32', ints(-100000, 100000)],
    ['INT32', 'FP32', ints(-100000, 100000, 'INT32')],
    ['INT64', 'INT32', ints(-100000, 100000)],
    ['INT64', 'BOOL', ints(-2, 2)],
    ['BOOL', 'FP32', randomBooleans],
    ['BOOL', 'INT64', randomBooleans],
    ['FP32', 'FP32', uniform(-3, 3)],
    ['BOOL', 'BOOL', randomBooleans],
  ];
  const codes: Partial<Record<Datatype, number>> = { FP32: 1, INT32: 6, INT64: 7, BOOL: 9, FP16: 10, BF16: 16 };
  for (const [from, to, fill] of cases) {
    it(`${from} → ${to}`, async () => {
      for (const shape of shapes) {
        await checkOneNode(gpu, {
          op: 'Cast', inputs: [input('x', shape, fill, from)], outputs: [{ name: 'y', shape, datatype: to }], attributes: { to: codes[to]! }, opset: 13,
        });
      }
    });
  }
  it.each<Datatype>(['INT64', 'BOOL', 'INT32'])('FP32 → %s folded on the host', (to) =>
    checkFolded('Cast', [uniform(-50, 50)([4, 5])], [4, 5], { to: codes[to]! }, 13, to));

  // FP32 → FP16 / BFLOAT16 → FP32 must round to the narrow type although the executor stores every
  // float in f32.
  /**
   * Ordinary values, exact ties between neighbours of both types (1 + 2^-11 and 1 + 3 * 2^-11 for
   * FP16, 1 + 2^-8 for BFLOAT16), FP16 subnormals, values around FP16's largest (65504) and the
   * rounding edge to infinity (65520), huge values for BFLOAT16, infinities and NaN.
   */
  const edges = [1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -8), 1 + 3 * 2 ** -8, 3e-6, -4.5e-7, 6.1e-5, 65504, 65519.99, 65520, -70000, 3e38, -Infinity, Infinity, NaN];
  const mixed = (shape: number[]): HostTensor => {
    const tensor = uniform(-1000, 1000)(shape);
    (tensor.data as Float32Array).set(edges);
    return tensor;
  };
  it.each<Datatype>(['FP16', 'BF16'])('FP32 → %s → FP32 rounds to the narrow type', async (narrow) => {
    const bytes = new GraphBuilder('narrow_cast').input('x', 'FP32', [7, 13])
      .node('Cast', ['x'], ['narrow'], { to: codes[narrow]! }).node('Cast', ['narrow'], ['y'], { to: 1 })
      .output('y', 'FP32', [7, 13]).toBytes({ opset: 13 });
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [7, 13], fill: mixed }], [{ name: 'y', shape: [7, 13] }]);
  });
  it('INT64 → FP16 → FP32 rounds large integers', async () => {
    const bytes = new GraphBuilder('narrow_int_cast').input('x', 'INT64', [5, 9])
      .node('Cast', ['x'], ['narrow'], { to: 10 }).node('Cast', ['narrow'], ['y'], { to: 1 })
      .output('y', 'FP32', [5, 9]).toBytes({ opset: 13 });
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [5, 9], datatype: 'INT64', fill: ints(-70000, 70000) }], [{ name: 'y', shape: [5, 9] }]);
  });
  it.each<Datatype>(['FP16', 'BF16'])('FP32 → %s folded on the host rounds', (narrow) =>
    checkFolded('Cast', [uniform(-1000, 1000)([4, 5])], [4, 5], { to: codes[narrow]! }, 13, narrow));
  it('to STRING is refused at load', () =>
    expectRefused(gpu, { op: 'Cast', inputs: [['x', [3]]], outputs: [{ name: 'y', shape: [3], datatype: 'BYTES' }], attributes: { to: 8 } }, 'STRING'));
});

// ---------------------------------------------------------------------------------------------
// Binary

const BROADCASTS: Array<[a: number[], b: number[]]> = [
  [[7, 13], [7, 13]],
  [[4, 1, 5], [3, 1]],
  [[], [3, 7]],
  [[2, 1, 9], []],
  [[5], [2, 3, 5]],
  [[3, 1, 1, 7], [1, 5, 2, 1]],
  // More than one workgroup of outputs.
  [[5, 61], [61]],
];

/** Divisors in ±[0.25, 4): quotients stay finite, signs vary. */
const divisors = (shape: number[]): HostTensor => {
  const tensor = uniform(0.25, 4)(shape);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index += 3) data[index] = -data[index];
  return tensor;
};

/** Nonzero INT64 divisors of both signs. */
const integerDivisors = (shape: number[]): HostTensor => {
  const tensor = randomIntegers(shape, 1, 13);
  const data = tensor.data as BigInt64Array;
  for (let index = 1; index < data.length; index += 2) data[index] = -data[index];
  return tensor;
};

const ARITHMETIC: ReadonlyArray<[op: string, a?: InputSpec['fill'], b?: InputSpec['fill']]> = [
  ['Add'], ['Sub'], ['Mul'], ['Div', undefined, divisors], ['Pow', uniform(0.01, 4), uniform(-3, 3)], ['Min'], ['Max'],
];

for (const [op, a = uniform(-5, 5), b = uniform(-5, 5)] of ARITHMETIC) {
  describe(op, () => {
    it.each(BROADCASTS)('%j with %j', async (aShape, bShape) =>
      checkOneNode(gpu, { op, inputs: [input('a', aShape, a), input('b', bShape, b)], output: broadcast(aShape, bShape) }));
    it('empty operands', async () => {
      await checkOneNode(gpu, { op, inputs: [input('a', [0, 3], a), input('b', [3], b)], output: [0, 3] });
      await checkOneNode(gpu, { op, inputs: [input('a', [2, 1], a), input('b', [0, 1, 4], b)], output: [0, 2, 4] });
    });
    it('folded on the host', () => checkFolded(op, [a([2, 3, 5]), b([5])], [2, 3, 5]));
    if (op !== 'Pow') {
      // Integer division truncates towards zero.
      it('on INT64', () =>
        checkOneNode(gpu, {
          op, inputs: [input('a', [4, 9], ints(-500, 500), 'INT64'), input('b', [9], integerDivisors, 'INT64')],
          outputs: [{ name: 'y', shape: [4, 9], datatype: 'INT64' }],
        }));
      it('on INT64 folded on the host', () => checkFolded(op, [randomIntegers([4, 5], -50, 50), integerDivisors([5])], [4, 5], {}, 17, 'INT64'));
    }
  });
}

describe('Pow', () => {
  it('negative bases: integral exponents keep or flip the sign, fractional ones give NaN', () =>
    checkOneNode(gpu, {
      op: 'Pow', inputs: [input('a', [9, 7], uniform(-3, 3)), input('b', [7], (shape) => {
        const exponents = wholeFloats(-3, 3)(shape);
        (exponents.data as Float32Array).set([0.5, -1.5]);
        return exponents;
      })], output: [9, 7],
    }));
  it.each([2, 3, 0.5, 1, 0, -1])('the constant exponent %d', (exponent) =>
    checkOneNode(gpu, {
      op: 'Pow', inputs: [input('a', [4, 9], exponent === 0.5 ? uniform(0, 9) : uniform(-3, 3))], output: [4, 9], nodeInputs: ['a', 'e'],
      initializers: [{ name: 'e', tensor: fp32([exponent], []) }],
    }));
  it('an INT64 exponent', () =>
    checkOneNode(gpu, {
      op: 'Pow', inputs: [input('a', [3, 5], uniform(-2, 2))], output: [3, 5], nodeInputs: ['a', 'e'], opset: 15,
      initializers: [{ name: 'e', tensor: int64([0, 1, 2, 3, -2]) }],
    }));
  it('on INT64 folded on the host', () => checkFolded('Pow', [randomIntegers([4, 5], -4, 4), randomIntegers([5], 0, 3)], [4, 5], {}, 15, 'INT64'));
  it('on INT64 tensors on the GPU, exactly', () =>
    checkOneNode(gpu, {
      op: 'Pow', inputs: [input('a', [3], ints(1, 3), 'INT64'), input('b', [3], ints(1, 3), 'INT64')], outputs: [{ name: 'y', shape: [3], datatype: 'INT64' }],
    }));
});

describe.each(['Min', 'Max'])('%s with any number of inputs', (op) => {
  const operandSets: number[][][] = [[[3, 5]], [[2, 1, 5], [3, 1], [5]], [[1, 4], [3, 1], [], [2, 3, 4]]];
  it.each(operandSets.map((operands) => [operands.length, operands] as const))('%i inputs %j', (_, operands) =>
    checkOneNode(gpu, { op, inputs: operands.map((shape, index) => [`x${index}`, shape] as [string, number[]]), output: broadcast(...operands), opset: 13 }));
  it('three inputs folded on the host', () =>
    checkFolded(op, [uniform(-3, 3)([4, 5]), uniform(-3, 3)([5]), uniform(-3, 3)([4, 1])], [4, 5], {}, 13));
});

describe('PRelu', () => {
  it.each<[number[], number[]]>([[[2, 3, 5], [3, 1]], [[2, 3, 5], [5]], [[4, 7], []], [[2, 3, 5], [2, 3, 5]]])('%j with slope %j', (shape, slope) =>
    checkOneNode(gpu, { op: 'PRelu', inputs: [['x', shape], ['slope', slope]], output: shape, scale: 3 }));
  it('folded on the host', () => checkFolded('PRelu', [uniform(-3, 3)([2, 3, 5]), uniform(0.5, 2)([3, 1])], [2, 3, 5]));
});

const COMPARISON_SHAPES: Array<[a: number[], b: number[]]> = [[[6, 11], [6, 11]], [[4, 1, 5], [3, 1]], [[7], []]];

for (const op of ['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual']) {
  describe(op, () => {
    // Small whole numbers, so ties are common.
    it.each(COMPARISON_SHAPES)('floats %j with %j', (a, b) =>
      checkOneNode(gpu, {
        op, inputs: [input('a', a, wholeFloats(-2, 2)), input('b', b, wholeFloats(-2, 2))], outputs: [{ name: 'y', shape: broadcast(a, b), datatype: 'BOOL' }],
      }));
    it('INT64 [3, 1, 4] with [5, 1]', () =>
      checkOneNode(gpu, {
        op, inputs: [input('a', [3, 1, 4], ints(-2, 2), 'INT64'), input('b', [5, 1], ints(-2, 2), 'INT64')],
        outputs: [{ name: 'y', shape: [3, 5, 4], datatype: 'BOOL' }],
      }));
    it('folded on the host', () => checkFolded(op, [wholeFloats(-2, 2)([4, 5]), wholeFloats(-2, 2)([5])], [4, 5], {}, 17, 'BOOL'));
  });
}

for (const op of ['And', 'Or', 'Xor', 'Equal']) {
  describe(`${op} on booleans`, () => {
    it('[3, 1, 5] with [4, 1]', () =>
      checkOneNode(gpu, {
        op, inputs: [input('a', [3, 1, 5], randomBooleans, 'BOOL'), input('b', [4, 1], randomBooleans, 'BOOL')],
        outputs: [{ name: 'y', shape: [3, 4, 5], datatype: 'BOOL' }],
      }));
    it('folded on the host', () => checkFolded(op, [randomBooleans([4, 5]), randomBooleans([4, 1])], [4, 5], {}, 17, 'BOOL'));
  });
}

describe('Where', () => {
  const cases: Array<[c: number[], x: number[], y: number[]]> = [
    [[5, 7], [5, 7], [5, 7]],
    [[3, 1, 5], [4, 5], []],
    [[2, 1, 1], [3, 1], [4]],
    [[1, 9], [6, 1], [9]],
    [[], [2, 3], [3]],
    [[0, 4], [4], [1]],
  ];
  it.each(cases)('condition %j, x %j, y %j', (c, x, y) =>
    checkOneNode(gpu, { op: 'Where', inputs: [input('c', c, randomBooleans, 'BOOL'), ['a', x], ['b', y]], output: broadcast(c, x, y) }));
  it('filling masked positions with a constant (-1e9)', () =>
    checkOneNode(gpu, {
      op: 'Where', inputs: [input('c', [3, 1, 7], randomBooleans, 'BOOL'), ['a', [3, 4, 7]]], output: [3, 4, 7], nodeInputs: ['c', 'a', 'fill'],
      initializers: [{ name: 'fill', tensor: fp32([-1e9], []) }],
    }));
  it('INT64 values', () =>
    checkOneNode(gpu, {
      op: 'Where', inputs: [input('c', [4, 1], randomBooleans, 'BOOL'), input('a', [4, 7], ints(-9, 9), 'INT64'), input('b', [7], ints(-9, 9), 'INT64')],
      outputs: [{ name: 'y', shape: [4, 7], datatype: 'INT64' }],
    }));
  it('folded on the host', () => checkFolded('Where', [randomBooleans([4, 1]), uniform(-3, 3)([4, 5]), uniform(-3, 3)([5])], [4, 5]));
});

describe('binary ops with a fused activation', () => {
  const chains: Array<[binary: string, activation: string, attributes: Record<string, AttributeValue>, opset: number]> = [
    ['Add', 'Relu', {}, 17],
    ['Sub', 'Sigmoid', {}, 17],
    ['Mul', 'LeakyRelu', { alpha: float(0.1) }, 17],
    ['Div', 'HardSigmoid', { alpha: float(0.25), beta: float(0.4) }, 17],
    ['Add', 'Gelu', { approximate: 'tanh' }, 20],
    ['Max', 'Tanh', {}, 17],
    ['Add', 'Clip', {}, 13],
  ];
  it.each(chains)('%s → %s', async (binary, activation, attributes, opset) => {
    const graph = new GraphBuilder('chain').input('a', 'FP32', [4, 1, 9]).input('b', 'FP32', [3, 9]).node(binary, ['a', 'b'], ['sum']);
    if (activation === 'Clip') {
      graph.initializer('low', 'FP32', [], Float32Array.of(-0.5)).initializer('high', 'FP32', [], Float32Array.of(0.75));
      graph.node('Clip', ['sum', 'low', 'high'], ['y']);
    } else {
      graph.node(activation, ['sum'], ['y'], attributes);
    }
    const bytes = graph.output('y', 'FP32', [4, 3, 9]).toBytes({ opset });
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      // Only a fused pair tests the binary kernel's epilogue.
      expect(model.fused).toHaveLength(1);
      expect(model.stepCount).toBe(1);
    } finally {
      model.dispose();
    }
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'a', shape: [4, 1, 9] }, { name: 'b', shape: [3, 9] }], [{ name: 'y', shape: [4, 3, 9] }], 4);
  });
  it('Mul of an input by itself', async () => {
    const bytes = new GraphBuilder('square').input('x', 'FP32', [5, 7]).node('Mul', ['x', 'x'], ['y']).output('y', 'FP32', [5, 7]).toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [5, 7] }], [{ name: 'y', shape: [5, 7] }], 3);
  });
});

describe('refusals', () => {
  it('an unsupported operator (TfIdfVectorizer) names the operator and node', () =>
    expectRefused(gpu, { op: 'TfIdfVectorizer', inputs: [['a', [3]]], output: [3], nodeName: 'tfidf_7', opset: 13 }, 'is not supported'));
  it("Gelu approximate='erf' is refused at load", () =>
    expectRefused(gpu, { op: 'Gelu', inputs: [['x', [3]]], output: [3], opset: 20, attributes: { approximate: 'erf' } }, "approximate='erf'"));
  it('an attribute the operator does not know is refused', () =>
    expectRefused(gpu, { op: 'Relu', inputs: [['x', [3]]], output: [3], attributes: { alpha: float(0.5) } }, "attribute 'alpha'"));
});
