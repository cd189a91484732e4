/**
 * ReduceSumSquare, ReduceL1, ReduceL2, ReduceLogSum and ReduceLogSumExp against onnxruntime on
 * fresh random inputs: axes as the attribute (opset 13) and as the input (opset 18), keepdims,
 * empty axes with and without noop_with_empty_axes, rows long enough for a workgroup per output,
 * log-sum-exp of values whose exp overflows, an empty axis, and the CPU folding constants.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, checkOneNode, int64, type OneNodeCase } from '../numerics/one-node.ts';
import { randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** Positive values in [0.5, 3): sums that cannot cancel, logs of them defined. */
const positive = (shape: number[]): HostTensor => {
  const tensor = randomTensor(shape);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) data[index] = 1.75 + 1.25 * data[index];
  return tensor;
};

/** Logits in ±200: exp overflows f32 unless the maximum is subtracted. */
const large = (shape: number[]): HostTensor => randomTensor(shape, 200);

const FILLS: Readonly<Record<string, (shape: number[]) => HostTensor>> = {
  ReduceSumSquare: positive, ReduceL1: randomTensor, ReduceL2: randomTensor, ReduceLogSum: positive, ReduceLogSumExp: large,
};

interface ReduceCase { shape: number[]; axes: number[] | undefined; keepdims: 0 | 1; noop?: 0 | 1 }

function reducedShape({ shape, axes, keepdims, noop }: ReduceCase): number[] {
  if ((!axes || axes.length === 0) && noop) return [...shape];
  const reduced = new Set((axes && axes.length > 0 ? axes : shape.map((_, axis) => axis)).map((axis) => (axis < 0 ? axis + shape.length : axis)));
  return keepdims ? shape.map((dim, axis) => (reduced.has(axis) ? 1 : dim)) : shape.filter((_, axis) => !reduced.has(axis));
}

/** Axes as the attribute before opset 18, as an initializer input from it. */
function model(op: string, testCase: ReduceCase, opset: number): OneNodeCase {
  const attributes: Record<string, AttributeValue> = { keepdims: testCase.keepdims };
  if (testCase.noop !== undefined) attributes.noop_with_empty_axes = testCase.noop;
  const oneNode: OneNodeCase = { op, inputs: [{ name: 'x', shape: testCase.shape, fill: FILLS[op] }], output: reducedShape(testCase), attributes, opset };
  if (testCase.axes !== undefined) {
    if (opset < 18) attributes.axes = testCase.axes;
    else Object.assign(oneNode, { nodeInputs: ['x', 'axes'], initializers: [{ name: 'axes', tensor: int64(testCase.axes) }] });
  }
  return oneNode;
}

const CASES: ReduceCase[] = [
  { shape: [3, 5, 7], axes: [1], keepdims: 1 },
  { shape: [2, 3, 4, 5], axes: [0, -1], keepdims: 0 },
  { shape: [3, 5, 7], axes: undefined, keepdims: 0 },
  // A workgroup per output: contiguous and strided.
  { shape: [3, 613], axes: [1], keepdims: 0 },
  { shape: [300, 3], axes: [0], keepdims: 1 },
  { shape: [0, 3], axes: [0], keepdims: 0 },
];

const INPUT_CASES: ReduceCase[] = [
  { shape: [3, 5, 7], axes: [], keepdims: 1, noop: 0 },
  { shape: [3, 5, 7], axes: [], keepdims: 0, noop: 1 },
];

const label = ({ shape, axes, keepdims, noop }: ReduceCase) =>
  `[${shape}] axes ${axes === undefined ? 'absent' : `[${axes}]`}, keepdims ${keepdims}${noop === undefined ? '' : `, noop_with_empty_axes ${noop}`}`;

for (const op of Object.keys(FILLS)) {
  describe(op, () => {
    for (const opset of [13, 18]) {
      for (const testCase of [...CASES, ...(opset >= 18 ? INPUT_CASES : [])]) {
        it(`opset ${opset}: ${label(testCase)}`, () => checkOneNode(gpu, model(op, testCase, opset)));
      }
    }
    it('folds a constant input on the host', async () => {
      const testCase: ReduceCase = { shape: [3, 4, 5], axes: [0, 2], keepdims: 0 };
      const { attributes, initializers } = model(op, testCase, 18);
      const outShape = reducedShape(testCase);
      const data = FILLS[op](testCase.shape);
      const graph = new GraphBuilder(`folded_${op.toLowerCase()}`).input('x', 'FP32', outShape).initializer('data', 'FP32', testCase.shape, data.data);
      for (const { name, tensor } of initializers ?? []) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
      const bytes = graph.node(op, ['data', 'axes'], ['folded'], attributes).node('Add', ['x', 'folded'], ['y']).output('y', 'FP32', outShape).toBytes({ opset: 18 });
      await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: outShape }], [{ name: 'y', shape: outShape }]);
    });
  });
}
