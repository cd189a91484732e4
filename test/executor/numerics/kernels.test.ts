/**
 * Every supported operator, one node at a time, against onnxruntime-node on fresh random inputs:
 * odd sizes that do not fill a tile or workgroup, broadcasting, every attribute branch.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { float, GraphBuilder, tensorAttribute, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { expectMatchesOrt, randomTensor } from './ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

interface OpCase {
  name: string;
  op: string;
  /** Graph inputs, filled with fresh random values on every run. */
  inputs: Array<[name: string, shape: number[]]>;
  /** The output shape we expect (ORT's must agree). */
  output: number[];
  attributes?: Record<string, AttributeValue>;
  /** Node inputs when they differ from the graph inputs (initializers, omitted optionals). */
  nodeInputs?: string[];
  initializers?: Array<{ name: string; tensor: HostTensor }>;
  opset?: number;
  /** Inputs are uniform in [-scale, scale). Default 1. */
  scale?: number;
}

function buildModel(testCase: OpCase): Uint8Array {
  const graph = new GraphBuilder(testCase.name);
  for (const [name, shape] of testCase.inputs) graph.input(name, 'FP32', shape);
  for (const { name, tensor } of testCase.initializers ?? []) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
  graph.node(testCase.op, testCase.nodeInputs ?? testCase.inputs.map(([name]) => name), ['y'], testCase.attributes, `${testCase.op.toLowerCase()}_under_test`);
  graph.output('y', 'FP32', testCase.output);
  return graph.toBytes({ opset: testCase.opset ?? 17 });
}

/** Compiles the case and checks two runs with different random inputs (the second reuses the plan). */
async function checkAgainstOrt(testCase: OpCase): Promise<void> {
  const bytes = buildModel(testCase);
  const model = await compileOnnxModel(gpu, bytes, { isolate: false });
  try {
    for (let round = 0; round < 2; round++) {
      const inputs = new Map(testCase.inputs.map(([name, shape]) => [name, randomTensor(shape, testCase.scale)]));
      await expectMatchesOrt(model, bytes, inputs);
      const { outputs } = await model.run(inputs);
      expect(outputs.get('y')!.shape).toEqual(testCase.output);
    }
  } finally {
    model.dispose();
  }
}

const int64 = (values: number[]): HostTensor => ({ datatype: 'INT64', shape: [values.length], data: BigInt64Array.from(values.map(BigInt)) });

describe('MatMul', () => {
  const cases: Array<[a: number[], b: number[], out: number[]]> = [
    [[1, 1], [1, 1], [1, 1]],
    [[7, 13], [13, 5], [7, 5]],
    [[33, 65], [65, 17], [33, 17]],
    [[64, 64], [64, 64], [64, 64]],
    [[70, 20], [20, 130], [70, 130]],
    [[3, 5, 7], [7, 9], [3, 5, 9]],
    [[2, 1, 4, 6], [3, 6, 5], [2, 3, 4, 5]],
    [[2, 3, 1, 2, 3, 4], [3, 1, 2, 4, 5], [2, 3, 1, 2, 3, 5]],
    [[2, 1, 2, 3, 4], [3, 1, 4, 5], [2, 3, 2, 3, 5]],
    [[13], [13, 6], [6]],
    [[4, 13], [13], [4]],
    [[2, 4, 13], [13], [2, 4]],
    [[13], [13], []],
  ];
  it.each(cases)('%j @ %j', (a, b, output) =>
    checkAgainstOrt({ name: 'matmul', op: 'MatMul', inputs: [['a', a], ['b', b]], output }));

  it('with the weight as an initializer', () =>
    checkAgainstOrt({
      name: 'matmul_weight', op: 'MatMul', inputs: [['a', [9, 11]]], output: [9, 3],
      nodeInputs: ['a', 'w'], initializers: [{ name: 'w', tensor: randomTensor([11, 3]) }],
    }));
});

describe('Gemm', () => {
  const [m, k, n] = [7, 13, 9];
  // 7 rows run the skinny tile (4 x 256), 37 rows the square one (64 x 64): both read A and B
  // transposed through their own staging code.
  for (const rows of [m, 37]) {
    for (const transA of [0, 1]) {
      for (const transB of [0, 1]) {
        it(`${rows} × ${k} × ${n}, transA=${transA} transB=${transB}, alpha 0.7, beta 1.3, bias [N]`, () =>
          checkAgainstOrt({
            name: 'gemm', op: 'Gemm',
            inputs: [['a', transA ? [k, rows] : [rows, k]], ['b', transB ? [n, k] : [k, n]], ['c', [n]]],
            output: [rows, n], attributes: { transA, transB, alpha: float(0.7), beta: float(1.3) },
          }));
      }
    }
  }
  const biasShapes: Array<[string, number[]]> = [['[1, N]', [1, n]], ['[M, N]', [m, n]], ['scalar', []], ['[M, 1]', [m, 1]], ['[1]', [1]]];
  biasShapes.forEach(([label, biasShape], index) => {
    it(`bias ${label}`, () =>
      checkAgainstOrt({
        name: 'gemm_bias', op: 'Gemm', inputs: [['a', [m, k]], ['b', [n, k]], ['c', biasShape]], output: [m, n],
        attributes: { transB: 1, alpha: float(index % 2 ? 1 : 2.5), beta: float(index % 2 ? 0.5 : 1) },
      }));
  });
  it('without C, tiles crossed in every dimension (65 × 70 × 67), transposed A', () =>
    checkAgainstOrt({
      name: 'gemm_large', op: 'Gemm', inputs: [['a', [70, 65]], ['b', [70, 67]]], output: [65, 67],
      attributes: { transA: 1, alpha: float(0.25) },
    }));
  it('with B and C as initializers (a dense layer)', () =>
    checkAgainstOrt({
      name: 'gemm_dense', op: 'Gemm', inputs: [['x', [5, 37]]], output: [5, 129], nodeInputs: ['x', 'w', 'bias'],
      attributes: { transB: 1 },
      initializers: [{ name: 'w', tensor: randomTensor([129, 37]) }, { name: 'bias', tensor: randomTensor([129]) }],
    }));
});

describe('Add and the other broadcasting binary ops', () => {
  const cases: Array<[a: number[], b: number[], out: number[]]> = [
    [[4, 1, 5], [3, 1], [4, 3, 5]],
    [[2, 3], [], [2, 3]],
    [[], [2, 3], [2, 3]],
    [[3, 4], [3, 4], [3, 4]],
    [[5], [2, 3, 5], [2, 3, 5]],
    [[70, 300], [300], [70, 300]],
    [[2, 1, 3, 1, 2, 3], [1, 4, 1, 2, 1, 3], [2, 4, 3, 2, 2, 3]],
    [[1], [1], [1]],
  ];
  it.each(cases)('Add %j + %j', (a, b, output) =>
    checkAgainstOrt({ name: 'add', op: 'Add', inputs: [['a', a], ['b', b]], output }));

  it.each(['Sub', 'Mul', 'Div'])('%s [4, 1, 5] with [3, 1]', (op) =>
    checkAgainstOrt({ name: op.toLowerCase(), op, inputs: [['a', [4, 1, 5]], ['b', [3, 1]]], output: [4, 3, 5] }));
});

describe('activations', () => {
  const shapes: Array<[number[]]> = [[[1]], [[7, 13]], [[3, 300]]];
  for (const op of ['Relu', 'Sigmoid', 'Tanh']) {
    it.each(shapes)(`${op} on %j`, (shape) =>
      // ±12 reaches both sigmoid branches and tanh's saturation.
      checkAgainstOrt({ name: op.toLowerCase(), op, inputs: [['x', shape]], output: shape, scale: 12 }));
  }
});

describe('Softmax', () => {
  for (const axis of [-1, 0, 1, 2]) {
    it(`axis ${axis} of [3, 4, 5]`, () =>
      // ±100 would overflow exp() without subtracting the row maximum.
      checkAgainstOrt({ name: 'softmax', op: 'Softmax', inputs: [['x', [3, 4, 5]]], output: [3, 4, 5], attributes: { axis }, scale: 100 }));
  }
  it('default axis on [4, 7]', () =>
    checkAgainstOrt({ name: 'softmax_default', op: 'Softmax', inputs: [['x', [4, 7]]], output: [4, 7] }));
  it('rows longer than the workgroup: [3, 1000]', () =>
    checkAgainstOrt({ name: 'softmax_long', op: 'Softmax', inputs: [['x', [3, 1000]]], output: [3, 1000], scale: 5 }));
  it('opset 11 coerces to 2-D at axis 1 of [3, 4, 5]', () =>
    checkAgainstOrt({ name: 'softmax_v11', op: 'Softmax', inputs: [['x', [3, 4, 5]]], output: [3, 4, 5], attributes: { axis: 1 }, opset: 11, scale: 5 }));
  it('opset 11 default axis on [2, 3, 4]', () =>
    checkAgainstOrt({ name: 'softmax_v11_default', op: 'Softmax', inputs: [['x', [2, 3, 4]]], output: [2, 3, 4], opset: 11 }));
});

describe('Reshape, Flatten, Identity, Constant', () => {
  const reshapes: Array<[target: number[], out: number[]]> = [[[0, -1], [2, 12]], [[-1], [24]], [[4, 0, 2], [4, 3, 2]], [[6, -1, 2], [6, 2, 2]]];
  it.each(reshapes)('Reshape [2, 3, 4] to %j', (target, output) =>
    checkAgainstOrt({
      name: 'reshape', op: 'Reshape', inputs: [['x', [2, 3, 4]]], output, nodeInputs: ['x', 'shape'],
      initializers: [{ name: 'shape', tensor: int64(target) }],
    }));

  it.each([0, 1, 2, -1])('Flatten [2, 3, 4] at axis %i', (axis) => {
    const split = axis < 0 ? axis + 3 : axis;
    const output = [[2, 3, 4].slice(0, split).reduce((p, d) => p * d, 1), [2, 3, 4].slice(split).reduce((p, d) => p * d, 1)];
    return checkAgainstOrt({ name: 'flatten', op: 'Flatten', inputs: [['x', [2, 3, 4]]], output, attributes: { axis } });
  });

  it('Identity', () => checkAgainstOrt({ name: 'identity', op: 'Identity', inputs: [['x', [3, 5]]], output: [3, 5] }));

  it('aliases between kernels: Add → Reshape (shape from a Constant node) → Softmax → Flatten', async () => {
    const bytes = new GraphBuilder('chain')
      .input('a', 'FP32', [2, 6]).input('b', 'FP32', [6])
      .node('Add', ['a', 'b'], ['sum'])
      .node('Constant', [], ['target'], { value: tensorAttribute('INT64', [3], BigInt64Array.from([2n, 3n, -1n])) })
      .node('Reshape', ['sum', 'target'], ['cube'])
      .node('Softmax', ['cube'], ['probabilities'], { axis: 1 })
      .node('Flatten', ['probabilities'], ['y'], { axis: 2 })
      .output('y', 'FP32', [6, 2]).output('cube', 'FP32', [2, 3, 2])
      .toBytes();
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      await expectMatchesOrt(model, bytes, new Map([['a', randomTensor([2, 6], 3)], ['b', randomTensor([6])]]));
    } finally {
      model.dispose();
    }
  });

  it('Constant value tensor and value_float feed kernels', async () => {
    const bytes = new GraphBuilder('constants')
      .input('x', 'FP32', [4, 3])
      .node('Constant', [], ['offset'], { value: tensorAttribute('FP32', [3], Float32Array.from([0.5, -1.5, 2])) })
      .node('Constant', [], ['scale'], { value_float: float(-0.75) })
      .node('Add', ['x', 'offset'], ['shifted'])
      .node('Mul', ['shifted', 'scale'], ['y'])
      .output('y', 'FP32', [4, 3])
      .toBytes();
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      await expectMatchesOrt(model, bytes, new Map([['x', randomTensor([4, 3])]]));
    } finally {
      model.dispose();
    }
  });
});

describe('refusals', () => {
  async function compileError(bytes: Uint8Array): Promise<NexusError> {
    const error = await compileOnnxModel(gpu, bytes, { isolate: false }).then(() => undefined, (thrown: unknown) => thrown);
    expect(error).toBeInstanceOf(NexusError);
    return error as NexusError;
  }

  it.each<[string, string, string[], Record<string, AttributeValue>]>([
    // Random operators: no run could be checked against a reference, so none is computed.
    ['Bernoulli', 'dropout_mask', ['x'], {}],
    ['RandomUniformLike', 'noise', ['x'], {}],
    ['Resize', 'upsample_1', ['x'], {}],
  ])('an unsupported operator (%s) fails compile with FAILED_PRECONDITION', async (op, nodeName, inputs, attributes) => {
    const bytes = new GraphBuilder('unsupported')
      .input('x', 'FP32', [1, 3, 8, 8]).input('w', 'FP32', [4, 3, 3, 3]).input('r', 'FP32', [1, 16, 4])
      .node('Relu', ['x'], ['fine'])
      .node(op, inputs, ['y'], attributes, nodeName)
      .output('y', 'FP32', [1, 4, 6, 6])
      .toBytes();
    const error = await compileError(bytes);
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain(`operator '${op}' (node '${nodeName}') is not supported`);
  });

  it('a model newer than the operator semantics the runtime knows (opset 29) fails compile', async () => {
    const bytes = new GraphBuilder('future').input('x', 'FP32', [2]).node('Relu', ['x'], ['y']).output('y', 'FP32', [2]).toBytes({ opset: 29 });
    const error = await compileError(bytes);
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain('opset 29');
    expect(error.message).toContain('up to opset 28');
  });

  it('an unsupported attribute value fails compile (Gemm transA=2)', async () => {
    const bytes = new GraphBuilder('bad_gemm')
      .input('a', 'FP32', [2, 2]).input('b', 'FP32', [2, 2])
      .node('Gemm', ['a', 'b'], ['y'], { transA: 2 }, 'odd_gemm')
      .output('y', 'FP32', [2, 2])
      .toBytes();
    const error = await compileError(bytes);
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("operator 'Gemm' (node 'odd_gemm') is not supported with transA=2");
  });

  it('a Reshape whose shape is not INT64 fails compile', async () => {
    const bytes = new GraphBuilder('dynamic_reshape')
      .input('x', 'FP32', [2, 3]).input('shape', 'FP32', [2])
      .node('Reshape', ['x', 'shape'], ['y'], {}, 'late_reshape')
      .output('y', 'FP32', [3, 2])
      .toBytes();
    const error = await compileError(bytes);
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("node 'late_reshape' (Reshape) is invalid: its 'shape' input must be INT64, got FP32");
  });

  it('inputs that do not match the signature fail the run with INVALID_ARGUMENT naming the input', async () => {
    const bytes = new GraphBuilder('checked')
      .input('features', 'FP32', [-1, 4]).node('Relu', ['features'], ['y']).output('y', 'FP32', [-1, 4])
      .toBytes();
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      const wrongInputs: Array<Map<string, HostTensor>> = [
        new Map([['features', randomTensor([2, 5])]]),
        new Map([['features', randomTensor([2, 4, 1])]]),
        new Map(),
        new Map([['features', { datatype: 'FP32', shape: [2, 4], data: new Float32Array(7) }]]),
      ];
      for (const inputs of wrongInputs) {
        const error = await model.run(inputs).then(() => undefined, (thrown: unknown) => thrown as NexusError);
        expect(error?.code).toBe(ErrorCode.INVALID_ARGUMENT);
        expect(error?.message).toContain("'features'");
      }
      // The model still works after refusing bad batches.
      await expectMatchesOrt(model, bytes, new Map([['features', randomTensor([3, 4])]]));
    } finally {
      model.dispose();
    }
  });
});
