/**
 * The element-wise maths against onnxruntime on fresh random inputs in each function's domain:
 * trigonometric and hyperbolic functions, Round (halves to even), Sign, Mish, Shrink,
 * ThresholdedRelu, Celu, Softsign, IsNaN / IsInf (NaN and infinities in the input), BitwiseNot,
 * Mod (fmod 0 and 1, negative operands), BitShift (UINT8 and UINT32, both directions),
 * BitwiseAnd / Or / Xor and CastLike; odd sizes, empty tensors, broadcasting, two opsets where
 * the operator has two, and the CPU implementations folding constant inputs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { float, GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import { onnxCodeOf, type Datatype } from '../../../services/onnx/datatypes.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import {
  buildOneNodeModel, checkModelAgainstOrt, checkOneNode, compileError, expectRefused, type InputSpec, type OneNodeCase,
} from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** Uniform in [low, high). */
const uniform = (low: number, high: number) => (shape: number[]): HostTensor => {
  const tensor = randomTensor(shape);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) data[index] = low + (data[index] + 1) / 2 * (high - low);
  return tensor;
};

/** Multiples of 0.5 in [-4, 4]: Round's ties, both parities. */
const halves = (shape: number[]): HostTensor => {
  const tensor = randomIntegers(shape, -8, 8, 'INT32');
  return { datatype: 'FP32', shape, data: Float32Array.from(tensor.data as Int32Array, (value) => value / 2) };
};

/** Random values with NaN, +inf and -inf mixed in. */
const special = (shape: number[]): HostTensor => {
  const tensor = randomTensor(shape, 5);
  const data = tensor.data as Float32Array;
  const specials = [Number.NaN, Infinity, -Infinity, 0];
  for (let index = 0; index < data.length; index++) if (Math.random() < 0.4) data[index] = specials[index % specials.length];
  return tensor;
};

interface UnaryCase {
  op: string;
  opsets: number[];
  fill?: (shape: number[]) => HostTensor;
  attributes?: Array<Record<string, AttributeValue>>;
  bool?: boolean;
}

const UNARY: UnaryCase[] = [
  { op: 'Sin', opsets: [7, 21], fill: uniform(-6, 6) },
  { op: 'Cos', opsets: [7, 21], fill: uniform(-6, 6) },
  { op: 'Tan', opsets: [7, 21], fill: uniform(-1.2, 1.2) },
  { op: 'Asin', opsets: [7, 21], fill: uniform(-0.99, 0.99) },
  { op: 'Acos', opsets: [7, 21], fill: uniform(-0.99, 0.99) },
  { op: 'Atan', opsets: [7, 21], fill: uniform(-8, 8) },
  { op: 'Sinh', opsets: [9, 21], fill: uniform(-4, 4) },
  { op: 'Cosh', opsets: [9, 21], fill: uniform(-4, 4) },
  { op: 'Asinh', opsets: [9, 21], fill: uniform(-20, 20) },
  { op: 'Acosh', opsets: [9, 21], fill: uniform(1, 20) },
  { op: 'Atanh', opsets: [9, 21], fill: uniform(-0.95, 0.95) },
  { op: 'Round', opsets: [11, 21], fill: halves },
  { op: 'Sign', opsets: [9, 13], fill: halves },
  { op: 'Mish', opsets: [18, 21], fill: uniform(-25, 25) },
  { op: 'Shrink', opsets: [9, 21], fill: uniform(-2, 2), attributes: [{}, { lambd: float(1.2), bias: float(0.3) }] },
  { op: 'ThresholdedRelu', opsets: [10, 21], fill: uniform(-3, 3), attributes: [{}, { alpha: float(-0.5) }] },
  { op: 'Celu', opsets: [12, 21], fill: uniform(-4, 4), attributes: [{}, { alpha: float(0.4) }] },
  { op: 'Softsign', opsets: [1, 21], fill: uniform(-10, 10) },
  { op: 'IsNaN', opsets: [9, 20], fill: special, bool: true },
  {
    op: 'IsInf', opsets: [10, 20], fill: special, bool: true,
    attributes: [{}, { detect_negative: 0 }, { detect_positive: 0 }, { detect_negative: 0, detect_positive: 0 }],
  },
];

const SHAPES = [[3, 5, 7], [259], [0, 4]];

for (const { op, opsets, fill, attributes, bool } of UNARY) {
  describe(op, () => {
    for (const opset of opsets) {
      for (const attributeSet of attributes ?? [{}]) {
        for (const shape of SHAPES) {
          it(`opset ${opset}, [${shape}] ${JSON.stringify(attributeSet)}`, () => checkOneNode(gpu, {
            op, inputs: [{ name: 'x', shape, fill }], outputs: [{ name: 'y', shape, datatype: bool ? 'BOOL' : 'FP32' }], attributes: attributeSet, opset,
          }));
        }
      }
    }
    it('folds a constant input on the host', async () => {
      const shape = [2, 3];
      const data = (fill ?? randomTensor)(shape);
      const graph = new GraphBuilder(`folded_${op.toLowerCase()}`).input('x', 'FP32', shape).initializer('data', 'FP32', shape, data.data)
        .node(op, ['data'], ['folded'], (attributes ?? [{}]).at(-1));
      if (bool) graph.node('Cast', ['folded'], ['as_float'], { to: onnxCodeOf('FP32') }).node('Add', ['x', 'as_float'], ['y']);
      else graph.node('Add', ['x', 'folded'], ['y']);
      const bytes = graph.output('y', 'FP32', shape).toBytes({ opset: opsets.at(-1) });
      await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape }], [{ name: 'y', shape }]);
    });
  });
}

const integers = (name: string, shape: number[], datatype: 'INT32' | 'INT64', low: number, high: number): InputSpec =>
  ({ name, shape, datatype, fill: (dims) => randomIntegers(dims, low, high, datatype) });

describe('Sign and BitwiseNot on integers', () => {
  for (const datatype of ['INT32', 'INT64'] as const) {
    it(`Sign on ${datatype}`, () => checkOneNode(gpu, {
      op: 'Sign', inputs: [integers('x', [4, 9], datatype, -3, 3)], outputs: [{ name: 'y', shape: [4, 9], datatype }], opset: 13,
    }));
    it(`BitwiseNot on ${datatype}`, () => checkOneNode(gpu, {
      op: 'BitwiseNot', inputs: [integers('x', [5, 7], datatype, -1000, 1000)], outputs: [{ name: 'y', shape: [5, 7], datatype }], opset: 18,
    }));
  }
  it('BitwiseNot on UINT8 and UINT16 keeps their width', async () => {
    for (const narrow of ['UINT8', 'UINT16'] as const) {
      const shape = [3, 11];
      const bytes = new GraphBuilder('bitwise_not_narrow').input('x', 'INT32', shape)
        .node('Cast', ['x'], ['narrow'], { to: onnxCodeOf(narrow) }).node('BitwiseNot', ['narrow'], ['flipped'])
        .node('Cast', ['flipped'], ['y'], { to: onnxCodeOf('INT32') }).output('y', 'INT32', shape).toBytes({ opset: 18 });
      await checkModelAgainstOrt(gpu, bytes, [integers('x', shape, 'INT32', 0, 255)], [{ name: 'y', shape }]);
    }
  });
});

describe('Mod', () => {
  for (const opset of [10, 13]) {
    for (const fmod of [0, 1]) {
      for (const datatype of ['INT32', 'INT64'] as const) {
        it(`opset ${opset}, fmod ${fmod}, ${datatype} [2, 3, 5] % [3, 1] (both signs)`, () => checkOneNode(gpu, {
          op: 'Mod', inputs: [integers('a', [2, 3, 5], datatype, -40, 40), { ...integers('b', [3, 1], datatype, 1, 9), fill: nonZero(datatype) }],
          outputs: [{ name: 'y', shape: [2, 3, 5], datatype }], attributes: { fmod }, opset,
        }));
      }
    }
    it(`opset ${opset}, fmod 1, FP32 [7, 9] % [9] and an empty tensor`, async () => {
      await checkOneNode(gpu, { op: 'Mod', inputs: [['a', [7, 9]], { name: 'b', shape: [9], fill: uniform(0.5, 3) }], output: [7, 9], attributes: { fmod: 1 }, opset, scale: 10 });
      await checkOneNode(gpu, { op: 'Mod', inputs: [['a', [0, 9]], ['b', [9]]], output: [0, 9], attributes: { fmod: 1 }, opset });
    });
  }
  it('refuses fmod=0 on floats, naming the node', () =>
    expectRefusedInvalid({ op: 'Mod', inputs: [['a', [2]], ['b', [2]]], output: [2], attributes: { fmod: 0 }, opset: 13 }, 'needs fmod=1'));
});

/** Integers in [-9, 9] without 0 (a divisor of 0 is undefined). */
function nonZero(datatype: 'INT32' | 'INT64') {
  return (shape: number[]): HostTensor => {
    const values = Array.from({ length: shape.reduce((total, dim) => total * dim, 1) }, () => (1 + Math.floor(Math.random() * 9)) * (Math.random() < 0.5 ? -1 : 1));
    return { datatype, shape, data: datatype === 'INT64' ? BigInt64Array.from(values, BigInt) : Int32Array.from(values) };
  };
}

/** Compiling `testCase` fails with FAILED_PRECONDITION: the node is not valid ONNX. */
async function expectRefusedInvalid(testCase: OneNodeCase, detail: string): Promise<void> {
  const error = await compileError(gpu, buildOneNodeModel(testCase));
  expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
  expect(error.message).toContain(`(${testCase.op}) is invalid`);
  expect(error.message).toContain(detail);
}

/** x and y (INT32 graph inputs) cast to `datatype`, `op` applied, the result cast back to INT32. */
function castChain(op: string, datatype: Datatype, shapes: [number[], number[]], outShape: number[], attributes: Record<string, AttributeValue>, opset: number) {
  return new GraphBuilder(`${op.toLowerCase()}_${datatype.toLowerCase()}`).input('a', 'INT32', shapes[0]).input('b', 'INT32', shapes[1])
    .node('Cast', ['a'], ['a_cast'], { to: onnxCodeOf(datatype) }).node('Cast', ['b'], ['b_cast'], { to: onnxCodeOf(datatype) })
    .node(op, ['a_cast', 'b_cast'], ['result'], attributes).node('Cast', ['result'], ['y'], { to: onnxCodeOf('INT32') })
    .output('y', 'INT32', outShape).toBytes({ opset });
}

describe('BitShift', () => {
  for (const datatype of ['UINT8', 'UINT32'] as const) {
    for (const direction of ['LEFT', 'RIGHT']) {
      it(`${direction} on ${datatype}: [4, 5] by [5] (bits shifted past the width drop)`, () => checkModelAgainstOrt(gpu,
        castChain('BitShift', datatype, [[4, 5], [5]], [4, 5], { direction }, 11),
        [integers('a', [4, 5], 'INT32', 0, 255), integers('b', [5], 'INT32', 0, 7)], [{ name: 'y', shape: [4, 5] }]));
    }
  }
  it('refuses signed integers, naming the node', () => expectRefused(gpu, {
    op: 'BitShift', inputs: [integers('a', [3], 'INT32', 0, 9), integers('b', [3], 'INT32', 0, 3)],
    outputs: [{ name: 'y', shape: [3], datatype: 'INT32' }], attributes: { direction: 'LEFT' }, opset: 11,
  }, 'INT32 inputs'));
});

describe('BitwiseAnd, BitwiseOr, BitwiseXor', () => {
  for (const op of ['BitwiseAnd', 'BitwiseOr', 'BitwiseXor']) {
    for (const datatype of ['INT32', 'INT64'] as const) {
      it(`${op} on ${datatype}: [3, 1, 7] with [4, 7], negative values included`, () => checkOneNode(gpu, {
        op, inputs: [integers('a', [3, 1, 7], datatype, -5000, 5000), integers('b', [4, 7], datatype, -5000, 5000)],
        outputs: [{ name: 'y', shape: [3, 4, 7], datatype }], opset: 18,
      }));
    }
    it(`${op} on UINT8`, () => checkModelAgainstOrt(gpu, castChain(op, 'UINT8', [[2, 9], [9]], [2, 9], {}, 18),
      [integers('a', [2, 9], 'INT32', 0, 255), integers('b', [9], 'INT32', 0, 255)], [{ name: 'y', shape: [2, 9] }]));
  }
});

describe('CastLike', () => {
  for (const opset of [15, 19]) {
    it(`opset ${opset}: FP32 like INT32 (truncating), INT64 like FP32, and an empty tensor`, async () => {
      await checkOneNode(gpu, {
        op: 'CastLike', inputs: [['x', [3, 7]], integers('like', [1], 'INT32', 0, 1)], outputs: [{ name: 'y', shape: [3, 7], datatype: 'INT32' }], opset, scale: 50,
      });
      await checkOneNode(gpu, {
        op: 'CastLike', inputs: [integers('x', [5, 3], 'INT64', -99, 99), ['like', [2]]], outputs: [{ name: 'y', shape: [5, 3] }], opset,
      });
      await checkOneNode(gpu, { op: 'CastLike', inputs: [['x', [0, 3]], integers('like', [1], 'INT64', 0, 1)], outputs: [{ name: 'y', shape: [0, 3], datatype: 'INT64' }], opset });
    });
  }
});
