/**
 * Hostile ONNX files against the executor's compile: every one is refused with its exact code and
 * a message naming the budget or the field, before anything of its size is allocated, and the
 * same process then still compiles and runs a correct model with correct numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../services/domain/errors.ts';
import { DEFAULT_COMPILE_BUDGETS, type CompileBudgets } from '../../services/executor/compiler/index.ts';
import { openGpu, type GpuContext } from '../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../services/executor/runtime/index.ts';
import { GraphBuilder, tensorAttribute } from '../../services/onnx/builder.ts';
import type { Datatype } from '../../services/onnx/datatypes.ts';

let gpu: GpuContext;
beforeAll(async () => {
  gpu = await openGpu();
});
afterAll(() => gpu?.destroy());

const { INVALID_ARGUMENT, RESOURCE_EXHAUSTED, FAILED_PRECONDITION } = ErrorCode;
const MIB = 1024 * 1024;

interface Options {
  budgets?: Partial<CompileBudgets>;
  isolate?: boolean;
}

/** Compiles `bytes` expecting a refusal with `code` and a message matching `message`. */
async function expectRefused(bytes: Uint8Array, code: ErrorCode, message: RegExp, options: Options = {}): Promise<void> {
  const error = await compileOnnxModel(gpu, bytes, options).then(
    (model) => { model.dispose(); return undefined; },
    (reason: unknown) => reason,
  );
  expect(error, 'the model compiled').toBeInstanceOf(NexusError);
  expect((error as NexusError).message).toMatch(message);
  expect((error as NexusError).code).toBe(code);
}

/** x[B, 4] → MatMul(w[4, 3]) → Add(b[3]) → Relu: the correct model every refusal is followed by. */
const W = Float32Array.from({ length: 12 }, (_, index) => (index % 5) - 2);
const B = Float32Array.of(0.5, -1, 2);
const healthyBytes = new GraphBuilder('healthy')
  .input('x', 'FP32', [-1, 4])
  .initializer('w', 'FP32', [4, 3], W)
  .initializer('b', 'FP32', [3], B)
  .node('MatMul', ['x', 'w'], ['xw'])
  .node('Add', ['xw', 'b'], ['logits'])
  .node('Relu', ['logits'], ['y'])
  .output('y', 'FP32', [-1, 3])
  .toBytes({ opset: 17 });

/** The process still compiles (isolated, as the service does) and runs the healthy model right. */
async function expectHealthy(): Promise<void> {
  const model = await compileOnnxModel(gpu, healthyBytes);
  try {
    const x = Float32Array.of(1, 2, 3, 4, -1, 0.5, 0, 2);
    const { outputs } = await model.run(new Map([['x', { datatype: 'FP32', shape: [2, 4], data: x }]]));
    const expected = [0, 1].flatMap((row) => [0, 1, 2].map((col) => {
      let sum = B[col];
      for (let k = 0; k < 4; k++) sum += x[row * 4 + k] * W[k * 3 + col];
      return Math.max(sum, 0);
    }));
    expect(Array.from(outputs.get('y')!.data as Float32Array)).toEqual(expected.map((value) => Math.fround(value)));
  } finally {
    model.dispose();
  }
}

const int64s = (values: number[]) => BigInt64Array.from(values, (value) => BigInt(value));

/** A graph with input x[-1, 4] that the test extends; `out` is its FP32 output of unknown shape. */
function graph(build: (g: GraphBuilder) => void, outputType: Datatype = 'FP32'): Uint8Array {
  const g = new GraphBuilder('hostile').input('x', 'FP32', [-1, 4]);
  build(g);
  return g.output('out', outputType, [-1]).toBytes({ opset: 17 });
}

const constantOfShape = (shape: BigInt64Array | Float32Array, datatype: 'INT64' | 'FP32' = 'INT64') => graph((g) => g
  .initializer('shape', datatype, [shape.length], shape)
  .node('ConstantOfShape', ['shape'], ['out'], { value: tensorAttribute('FP32', [1], Float32Array.of(1)) }, 'n1'));

interface HostileCase {
  name: string;
  bytes: () => Uint8Array;
  code: ErrorCode;
  message: RegExp;
  options?: Options;
}

const CASES: HostileCase[] = [
  {
    name: 'ConstantOfShape [1e9] (the 151-byte killer)', bytes: () => constantOfShape(int64s([1e9])), code: RESOURCE_EXHAUSTED,
    message: /constant folding of ConstantOfShape 'n1' would allocate 4000000000 bytes; the budget per folded tensor is 536870912 bytes \(foldTensorBytes, NEXUS_FOLD_TENSOR_BYTES\)/,
  },
  {
    name: 'ConstantOfShape [1e9] compiled on the serving thread', bytes: () => constantOfShape(int64s([1e9])), code: RESOURCE_EXHAUSTED,
    message: /would allocate 4000000000 bytes.*foldTensorBytes/, options: { isolate: false },
  },
  {
    name: 'ConstantOfShape [2^40]', bytes: () => constantOfShape(int64s([2 ** 40])), code: RESOURCE_EXHAUSTED,
    message: /\[1099511627776\], 1099511627776 elements; a tensor may have 2147483647 elements \(maxTensorElements, NEXUS_MAX_TENSOR_ELEMENTS\)/,
  },
  {
    name: 'ConstantOfShape [1e5, 1e5]', bytes: () => constantOfShape(int64s([1e5, 1e5])), code: RESOURCE_EXHAUSTED,
    message: /10000000000 elements.*maxTensorElements/,
  },
  {
    name: 'ConstantOfShape with a negative dim', bytes: () => constantOfShape(int64s([4, -1])), code: INVALID_ARGUMENT,
    message: /ConstantOfShape 'n1' has shape \[4, -1\]: dim -1 is not a non-negative integer/,
  },
  {
    name: 'ConstantOfShape with a NaN dim', bytes: () => constantOfShape(Float32Array.of(2, Number.NaN), 'FP32'), code: INVALID_ARGUMENT,
    message: /dim NaN is not a non-negative integer/,
  },
  {
    name: 'ConstantOfShape with a dim beyond 2^53', bytes: () => constantOfShape(BigInt64Array.of(2n ** 62n)), code: INVALID_ARGUMENT,
    message: /dim 4611686018427388000 is not a non-negative integer/,
  },
  {
    name: 'ConstantOfShape with an infinite dim', bytes: () => constantOfShape(Float32Array.of(Infinity), 'FP32'), code: INVALID_ARGUMENT,
    message: /dim Infinity is not a non-negative integer/,
  },
  {
    name: 'ConstantOfShapes over the folding budget together',
    bytes: () => graph((g) => {
      g.initializer('shape', 'INT64', [1], int64s([100_000]));
      for (let index = 0; index < 3; index++) g.node('ConstantOfShape', ['shape'], [`c${index}`], {}, `fill_${index}`);
      g.node('Concat', ['c0', 'c1', 'c2'], ['out'], { axis: 0 });
    }),
    code: RESOURCE_EXHAUSTED, options: { budgets: { foldBytes: MIB, foldTensorBytes: MIB } },
    message: /ConstantOfShape 'fill_2' would allocate 400000 bytes, 1200000 in all; the folding budget is 1048576 bytes \(foldBytes, NEXUS_FOLD_BUDGET_BYTES\)/,
  },
  {
    name: 'Tile with huge repeats', code: RESOURCE_EXHAUSTED, message: /Tile 'tile' would allocate 3200000000 bytes.*foldTensorBytes/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [2, 2], Float32Array.of(1, 2, 3, 4)).initializer('repeats', 'INT64', [2], int64s([1e4, 2e4]))
      .node('Tile', ['w', 'repeats'], ['out'], {}, 'tile')),
  },
  {
    name: 'Tile with repeats past the element budget', code: RESOURCE_EXHAUSTED, message: /maxTensorElements/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [2], Float32Array.of(1, 2)).initializer('repeats', 'INT64', [1], int64s([2 ** 31]))
      .node('Tile', ['w', 'repeats'], ['out'], {}, 'tile')),
  },
  {
    name: 'Tile with negative repeats', code: INVALID_ARGUMENT, message: /Tile repeats \[-3\] must be 1 non-negative counts/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [2], Float32Array.of(1, 2)).initializer('repeats', 'INT64', [1], int64s([-3]))
      .node('Tile', ['w', 'repeats'], ['out'], {}, 'tile')),
  },
  {
    name: 'Expand to a huge shape', code: RESOURCE_EXHAUSTED, message: /Expand 'expand' would allocate 4000000000 bytes.*foldTensorBytes/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [1], Float32Array.of(1)).initializer('shape', 'INT64', [2], int64s([1e4, 1e5]))
      .node('Expand', ['w', 'shape'], ['out'], {}, 'expand')),
  },
  {
    name: 'Expand to a shape with a negative dim', code: INVALID_ARGUMENT, message: /Expand 'expand' has shape \[-5\]: dim -5/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [1], Float32Array.of(1)).initializer('shape', 'INT64', [1], int64s([-5]))
      .node('Expand', ['w', 'shape'], ['out'], {}, 'expand')),
  },
  {
    name: 'Pad with huge pads', code: RESOURCE_EXHAUSTED, message: /Pad 'pad' would allocate 4000000008 bytes.*foldTensorBytes/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [2], Float32Array.of(1, 2)).initializer('pads', 'INT64', [2], int64s([0, 1e9]))
      .node('Pad', ['w', 'pads'], ['out'], {}, 'pad')),
  },
  {
    name: 'Pad with pads beyond 2^53', code: INVALID_ARGUMENT, message: /Pad 'pad' has shape \[\d+\]: dim \d+ is not a non-negative integer/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [2], Float32Array.of(1, 2)).initializer('pads', 'INT64', [2], BigInt64Array.of(0n, 2n ** 60n))
      .node('Pad', ['w', 'pads'], ['out'], {}, 'pad')),
  },
  {
    name: 'Range with a huge count', code: RESOURCE_EXHAUSTED, message: /Range 'range' would allocate 8000000000 bytes.*foldTensorBytes/,
    bytes: () => graph((g) => g.initializer('start', 'INT64', [], int64s([0])).initializer('limit', 'INT64', [], int64s([1e9])).initializer('delta', 'INT64', [], int64s([1]))
      .node('Range', ['start', 'limit', 'delta'], ['out'], {}, 'range'), 'INT64'),
  },
  {
    name: 'Range with a tiny delta', code: RESOURCE_EXHAUSTED, message: /Range 'range'.*maxTensorElements/,
    bytes: () => graph((g) => g.initializer('start', 'FP32', [], Float32Array.of(0)).initializer('limit', 'FP32', [], Float32Array.of(1)).initializer('delta', 'FP32', [], Float32Array.of(1e-12))
      .node('Range', ['start', 'limit', 'delta'], ['out'], {}, 'range')),
  },
  {
    name: 'Range with a zero delta', code: INVALID_ARGUMENT, message: /Range delta must not be 0/,
    bytes: () => graph((g) => g.initializer('start', 'INT64', [], int64s([0])).initializer('limit', 'INT64', [], int64s([10])).initializer('delta', 'INT64', [], int64s([0]))
      .node('Range', ['start', 'limit', 'delta'], ['out'], {}, 'range'), 'INT64'),
  },
  {
    name: 'Range with a NaN delta', code: INVALID_ARGUMENT, message: /Range start 0, limit 1 and delta NaN must be finite numbers/,
    bytes: () => graph((g) => g.initializer('start', 'FP32', [], Float32Array.of(0)).initializer('limit', 'FP32', [], Float32Array.of(1)).initializer('delta', 'FP32', [], Float32Array.of(Number.NaN))
      .node('Range', ['start', 'limit', 'delta'], ['out'], {}, 'range')),
  },
  {
    name: 'Concat of one large constant 10 000 times', code: RESOURCE_EXHAUSTED, message: /Concat 'concat' would allocate 4000000000 bytes.*foldTensorBytes/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [100_000], new Float32Array(100_000))
      .node('Concat', new Array<string>(10_000).fill('w'), ['out'], { axis: 0 }, 'concat')),
  },
  {
    name: 'Concat of huge folded constants', code: RESOURCE_EXHAUSTED, message: /ConstantOfShape 'fill_1' would allocate 40000000 bytes, 80000000 in all.*foldBytes/,
    options: { budgets: { foldBytes: 64 * MIB } },
    bytes: () => graph((g) => {
      // Each fill fits the per-tensor budget (the first one is really allocated); the second one is over the total.
      g.initializer('shape', 'INT64', [1], int64s([1e7]));
      for (let index = 0; index < 4; index++) g.node('ConstantOfShape', ['shape'], [`c${index}`], {}, `fill_${index}`);
      g.node('Concat', ['c0', 'c1', 'c2', 'c3'], ['out'], { axis: 0 }, 'concat');
    }),
  },
  {
    name: 'Gather of a huge index tensor', code: RESOURCE_EXHAUSTED, message: /Gather 'gather' would allocate 4000000000 bytes.*foldTensorBytes/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [1, 1000], new Float32Array(1000)).initializer('shape', 'INT64', [1], int64s([1e6]))
      .node('ConstantOfShape', ['shape'], ['indices'], { value: tensorAttribute('INT64', [1], int64s([0])) })
      .node('Gather', ['w', 'indices'], ['out'], { axis: 0 }, 'gather')),
  },
  {
    name: 'Add broadcasting two vectors to a huge matrix', code: RESOURCE_EXHAUSTED, message: /Add 'add' would allocate 4000000000 bytes.*foldTensorBytes/,
    bytes: () => graph((g) => g.initializer('a', 'FP32', [100_000, 1], new Float32Array(100_000)).initializer('b', 'FP32', [1, 10_000], new Float32Array(10_000))
      .node('Add', ['a', 'b'], ['out'], {}, 'add')),
  },
  {
    name: 'Reshape to a huge shape', code: INVALID_ARGUMENT, message: /cannot reshape \[4\] \(4 elements\) to \[10000000000\]/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [4], new Float32Array(4)).initializer('shape', 'INT64', [1], int64s([1e10]))
      .node('Reshape', ['w', 'shape'], ['out'], {}, 'reshape')),
  },
  {
    name: 'Reshape of nothing to a shape beyond 2^53', code: INVALID_ARGUMENT, message: /Reshape 'reshape' has shape \[0, \d+\]: dim \d+ is not a non-negative integer/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [0], new Float32Array(0)).initializer('shape', 'INT64', [2], BigInt64Array.of(0n, 2n ** 60n))
      .node('Reshape', ['w', 'shape'], ['out'], { allowzero: 1 }, 'reshape')),
  },
  {
    name: 'a model over the node budget', code: RESOURCE_EXHAUSTED, message: /the graph has 50 nodes; a graph may have 10 nodes \(maxNodes, NEXUS_MAX_GRAPH_NODES\)/,
    options: { budgets: { maxNodes: 10 } }, bytes: () => chain(50),
  },
  {
    name: 'an initializer whose dims disagree with its raw_data', code: INVALID_ARGUMENT, message: /tensor 'w' has 8 bytes of raw data, expected 16/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [4], Float32Array.of(1, 2)).node('Identity', ['w'], ['out'])),
  },
  {
    name: 'an initializer with a negative dim', code: INVALID_ARGUMENT, message: /initializer 'w' has shape \[-4\]: dim -4 is not a non-negative integer/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [-4], Float32Array.of(1, 2)).node('Identity', ['w'], ['out'])),
  },
  {
    name: 'an initializer declaring 2^40 elements', code: RESOURCE_EXHAUSTED, message: /initializer 'w' has shape \[1099511627776\].*maxTensorElements/,
    bytes: () => graph((g) => g.initializer('w', 'FP32', [2 ** 40], Float32Array.of(1)).node('Identity', ['w'], ['out'])),
  },
  {
    name: 'weights over the weight budget', code: RESOURCE_EXHAUSTED,
    message: /initializer 'w2' brings the weights to 8192 bytes; the weight budget is 6000 bytes \(weightBytes, NEXUS_WEIGHT_BUDGET_BYTES\)/,
    options: { budgets: { weightBytes: 6000 } },
    bytes: () => graph((g) => g.initializer('w1', 'FP32', [1024], new Float32Array(1024)).initializer('w2', 'FP32', [1024], new Float32Array(1024))
      .node('Add', ['w1', 'w2'], ['out'])),
  },
  {
    name: 'a Constant node declaring a huge tensor', code: RESOURCE_EXHAUSTED, message: /the tensor of Constant 'big' has shape \[100000, 100000\].*maxTensorElements/,
    bytes: () => graph((g) => g.node('Constant', [], ['out'], { value: tensorAttribute('FP32', [1e5, 1e5], Float32Array.of(1)) }, 'big')),
  },
  {
    name: 'a graph input declaring a huge fixed shape', code: RESOURCE_EXHAUSTED, message: /graph value 'big' has shape \[1000000, 1000000\].*maxTensorElements/,
    bytes: () => new GraphBuilder('hostile').input('big', 'FP32', [1e6, 1e6]).node('Relu', ['big'], ['out']).output('out', 'FP32', [1e6, 1e6]).toBytes(),
  },
  { name: 'truncated protobuf bytes', code: INVALID_ARGUMENT, message: /not an ONNX model/, bytes: () => healthyBytes.slice(0, 60) },
  { name: 'garbage bytes', code: INVALID_ARGUMENT, message: /not an ONNX model/, bytes: () => Uint8Array.from({ length: 4096 }, (_, index) => (index * 7919 + 13) % 251) },
  { name: 'no bytes at all', code: INVALID_ARGUMENT, message: /not an ONNX model: no graph/, bytes: () => new Uint8Array(0) },
  {
    name: 'a model whose compile runs out of its worker heap', code: FAILED_PRECONDITION,
    message: /model compile ran out of its 16 MiB heap \(compileHeapMb, NEXUS_COMPILE_HEAP_MB\)/,
    options: { budgets: { compileHeapMb: 16 } }, bytes: () => chain(40_000),
  },
  {
    name: 'a model whose compile runs past its time', code: FAILED_PRECONDITION, message: /model compile took longer than its 1 ms \(compileTimeoutMs, NEXUS_COMPILE_TIMEOUT_MS\)/,
    options: { budgets: { compileTimeoutMs: 1 } }, bytes: () => chain(40_000),
  },
  {
    name: 'a graph with a cycle', code: FAILED_PRECONDITION, message: /the graph has a cycle through node\(s\) 'a', 'b'/,
    bytes: () => graph((g) => g.node('Add', ['x', 'b'], ['a'], {}, 'a').node('Relu', ['a'], ['b'], {}, 'b').node('Identity', ['b'], ['out'])),
  },
];

/** x → Neg → Relu → Neg → ... (`nodes` nodes) → out. */
function chain(nodes: number): Uint8Array {
  const g = new GraphBuilder('chain').input('x', 'FP32', [-1, 4]);
  let previous = 'x';
  for (let index = 0; index < nodes; index++) {
    const output = index === nodes - 1 ? 'out' : `v${index}`;
    g.node(index % 2 ? 'Relu' : 'Neg', [previous], [output]);
    previous = output;
  }
  return g.output('out', 'FP32', [-1, 4]).toBytes({ opset: 17 });
}

describe('hostile models', () => {
  it('has at least 30 cases', () => expect(CASES.length).toBeGreaterThanOrEqual(30));

  for (const hostile of CASES) {
    it(`refuses ${hostile.name}, then still runs a correct model`, async () => {
      await expectRefused(hostile.bytes(), hostile.code, hostile.message, hostile.options);
      await expectHealthy();
    });
  }

  it('refuses a ConstantOfShape computed from the input shape when a batch would exceed the budget', async () => {
    // x → Shape → Mul(1e9) → ConstantOfShape: host values per plan, checked when the plan is built.
    const bytes = new GraphBuilder('per-plan')
      .input('x', 'FP32', [-1, 4])
      .initializer('scale', 'INT64', [], int64s([1e9]))
      .node('Shape', ['x'], ['shape'])
      .node('Mul', ['shape', 'scale'], ['huge'])
      .node('ConstantOfShape', ['huge'], ['out'], {}, 'fill')
      .output('out', 'FP32', [-1, -1])
      .toBytes({ opset: 17 });
    const model = await compileOnnxModel(gpu, bytes);
    try {
      const error = await model.run(new Map([['x', { datatype: 'FP32', shape: [1, 4], data: new Float32Array(4) }]])).catch((reason: unknown) => reason);
      expect((error as NexusError).message).toMatch(/host evaluation of ConstantOfShape 'fill'.*maxTensorElements/);
      expect((error as NexusError).code).toBe(RESOURCE_EXHAUSTED);
    } finally {
      model.dispose();
    }
    await expectHealthy();
  });

  it('compiles a 40 000-node graph within the default budgets quickly, and refuses it under a smaller node budget', async () => {
    const bytes = chain(40_000);
    const started = performance.now();
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    const elapsed = performance.now() - started;
    model.dispose();
    expect(model.stepCount).toBeGreaterThan(0);
    expect(elapsed).toBeLessThan(20_000);
    expect(DEFAULT_COMPILE_BUDGETS.maxNodes).toBeGreaterThanOrEqual(40_000);
    await expectRefused(bytes, RESOURCE_EXHAUSTED, /the graph has 40000 nodes; a graph may have 39999 nodes \(maxNodes/, { budgets: { maxNodes: 39_999 } });
    await expectHealthy();
  });

  it('folds large weights given as ConstantOfShape into typed arrays and runs them', async () => {
    // 2048 x 2048 FP32 (16 MiB) of 0.5, read by a MatMul: y = 0.5 * sum(x) in every column.
    const bytes = new GraphBuilder('folded-weights')
      .input('x', 'FP32', [-1, 2048])
      .initializer('shape', 'INT64', [2], int64s([2048, 2048]))
      .node('ConstantOfShape', ['shape'], ['w'], { value: tensorAttribute('FP32', [1], Float32Array.of(0.5)) })
      .node('MatMul', ['x', 'w'], ['y'])
      .output('y', 'FP32', [-1, 2048])
      .toBytes({ opset: 17 });
    const model = await compileOnnxModel(gpu, bytes);
    try {
      const x = Float32Array.from({ length: 2048 }, (_, index) => (index % 4) * 0.25);
      const { outputs } = await model.run(new Map([['x', { datatype: 'FP32', shape: [1, 2048], data: x }]]));
      const y = outputs.get('y')!.data as Float32Array;
      const expected = 0.5 * x.reduce((sum, value) => sum + value, 0);
      expect(y[0]).toBeCloseTo(expected, 2);
      expect(y[2047]).toBeCloseTo(expected, 2);
    } finally {
      model.dispose();
    }
  });
});
