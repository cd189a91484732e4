/**
 * Reductions, Softmax and LogSoftmax against onnxruntime on fresh random inputs: axes as the
 * attribute (opset 13, ReduceSum 11) and as the input (opset 18, ReduceSum 13), keepdims, empty
 * axes with and without noop_with_empty_axes, negative and non-adjacent axes, rows long enough
 * for the cooperative kernel, inputs large enough that an unshifted exp would overflow, INT64
 * inputs, and each reduction folded on the host when its input is constant.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, checkOneNode, int64, type OneNodeCase } from './one-node.ts';
import { randomIntegers, randomTensor } from './ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** Magnitudes in [0.8, 1.25), either sign. */
function nearOne(shape: number[]): HostTensor {
  const tensor = randomTensor(shape);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) data[index] = Math.sign(data[index] || 1) * 0.8 * 1.5625 ** Math.abs(data[index]);
  return tensor;
}

/**
 * Logits in ±10 with a third of them masked by -inf or by the lowest float; row 4 is all -inf
 * (NaN in ORT, 0 / 0) and row 5 all lowest-float (uniform).
 */
function masked(shape: number[]): HostTensor {
  const tensor = randomTensor(shape, 10);
  const data = tensor.data as Float32Array;
  const width = shape[shape.length - 1];
  for (let index = 0; index < data.length; index++) {
    const row = Math.floor(index / width);
    if (row === 4) data[index] = -Infinity;
    else if (row === 5) data[index] = -3.4028234663852886e38;
    else if (index % 3 === 0) data[index] = row % 2 ? -Infinity : -3.4028234663852886e38;
  }
  return tensor;
}

/** Positive values in [0.5, 3): sums of hundreds of them cannot cancel towards 0. */
function positive(shape: number[]): HostTensor {
  const tensor = randomTensor(shape);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) data[index] = 1.75 + 1.25 * data[index];
  return tensor;
}

/**
 * Inputs every summation order gets within FP32_TOLERANCE of ORT's: a sum of mixed signs that
 * lands near 0 keeps the rounding errors of its large partial sums (beyond the absolute
 * tolerance), and products of hundreds of values stay finite and normal only near ±1. Max and
 * Min are exact in any order, so they see both signs.
 */
function fillFor(op: string): ((shape: number[]) => HostTensor) | undefined {
  if (op === 'ReduceSum' || op === 'ReduceMean') return positive;
  return op === 'ReduceProd' ? nearOne : undefined;
}

interface ReduceCase {
  shape: number[];
  /** undefined: no axes at all; []: an empty axes input. */
  axes: number[] | undefined;
  keepdims: 0 | 1;
  noop?: 0 | 1;
}

/** The ONNX output shape, written out independently of the executor's shapes.ts. */
function reducedShape({ shape, axes, keepdims, noop }: ReduceCase): number[] {
  if ((!axes || axes.length === 0) && noop) return [...shape];
  const reduced = new Set((axes && axes.length > 0 ? axes : shape.map((_, axis) => axis)).map((axis) => (axis < 0 ? axis + shape.length : axis)));
  return keepdims ? shape.map((dim, axis) => (reduced.has(axis) ? 1 : dim)) : shape.filter((_, axis) => !reduced.has(axis));
}

/** The case as a one-node model: axes as the attribute below `inputFrom`, as an initializer from it. */
function reduceModel(op: string, testCase: ReduceCase, opset: number, inputFrom: number): OneNodeCase {
  const attributes: Record<string, AttributeValue> = { keepdims: testCase.keepdims };
  if (testCase.noop !== undefined) attributes.noop_with_empty_axes = testCase.noop;
  const fill = fillFor(op);
  const oneNode: OneNodeCase = { op, inputs: [{ name: 'x', shape: testCase.shape, fill }], output: reducedShape(testCase), attributes, opset, scale: 3 };
  if (testCase.axes !== undefined) {
    if (opset < inputFrom) {
      attributes.axes = testCase.axes;
    } else {
      oneNode.nodeInputs = ['x', 'axes'];
      oneNode.initializers = [{ name: 'axes', tensor: int64(testCase.axes) }];
    }
  }
  return oneNode;
}

const check = (device: GpuContext, op: string, testCase: ReduceCase, opset: number) =>
  checkOneNode(device, reduceModel(op, testCase, opset, op === 'ReduceSum' ? 13 : 18));

const attributeCases: ReduceCase[] = [
  { shape: [3, 5, 7], axes: [1], keepdims: 1 },
  { shape: [3, 5, 7], axes: [-1], keepdims: 0 },
  { shape: [3, 5, 7], axes: [0, 2], keepdims: 1 },
  { shape: [2, 3, 4, 5], axes: [0, 2], keepdims: 0 },
  { shape: [2, 3, 4, 5], axes: [-3, -1], keepdims: 1 },
  { shape: [3, 5, 7], axes: undefined, keepdims: 0 },
  { shape: [3, 5, 7], axes: undefined, keepdims: 1 },
  // Long enough rows for one workgroup per output: contiguous, strided, and split across dims.
  { shape: [5, 300], axes: [1], keepdims: 1 },
  { shape: [300, 3], axes: [0], keepdims: 0 },
  { shape: [2, 17, 3, 19], axes: [1, 3], keepdims: 0 },
  { shape: [613], axes: [0], keepdims: 0 },
  // The most separate dims the kernel takes: 4 kept, 3 reduced.
  { shape: [2, 2, 3, 2, 3, 2, 3], axes: [1, 3, 5], keepdims: 1 },
  { shape: [2, 3, 4, 5, 6], axes: [0, 2, 4], keepdims: 0 },
];

const inputCases: ReduceCase[] = [
  { shape: [3, 5, 7], axes: [2], keepdims: 1 },
  { shape: [3, 5, 7], axes: [-2, 0], keepdims: 0 },
  { shape: [4, 6, 9], axes: [1, 2], keepdims: 1 },
  // Empty axes reduce everything, unless noop_with_empty_axes makes the node the identity.
  { shape: [3, 5, 7], axes: [], keepdims: 1, noop: 0 },
  { shape: [3, 5, 7], axes: [], keepdims: 0, noop: 1 },
  { shape: [3, 5, 7], axes: undefined, keepdims: 0, noop: 1 },
  { shape: [3, 5, 7], axes: undefined, keepdims: 0, noop: 0 },
  { shape: [3, 400], axes: [-1], keepdims: 0 },
];

const label = ({ shape, axes, keepdims, noop }: ReduceCase) =>
  `[${shape}] axes ${axes === undefined ? 'absent' : `[${axes}]`}, keepdims ${keepdims}${noop === undefined ? '' : `, noop_with_empty_axes ${noop}`}`;

/** Cases whose input is an initializer: the CPU implementations reduce it at load. */
const FOLDED: Readonly<Record<string, Array<[ReduceCase, number]>>> = {
  ReduceSum: [[{ shape: [3, 5, 7], axes: [0, -1], keepdims: 0 }, 13], [{ shape: [3, 5, 7], axes: [], keepdims: 1, noop: 1 }, 13]],
  ReduceMean: [[{ shape: [3, 5, 7], axes: [1], keepdims: 1 }, 13], [{ shape: [3, 5, 7], axes: undefined, keepdims: 0 }, 18]],
  ReduceMax: [[{ shape: [4, 6], axes: [-1], keepdims: 0 }, 18]],
  ReduceMin: [[{ shape: [2, 3, 4], axes: [0, 2], keepdims: 1 }, 13]],
  ReduceProd: [[{ shape: [3, 5, 7], axes: [2], keepdims: 0 }, 13]],
};

/** INT64 cases; small values keep every partial sum exact in the kernel's f32 accumulator. */
const INTEGER: Readonly<Record<string, ReduceCase>> = {
  ReduceSum: { shape: [3, 5, 7], axes: [1], keepdims: 1 },
  ReduceMean: { shape: [3, 5, 7], axes: [1], keepdims: 0 },
  ReduceMax: { shape: [3, 5, 7], axes: [0, 2], keepdims: 0 },
  ReduceMin: { shape: [3, 5, 7], axes: [-1], keepdims: 1 },
};

/** The case with an initializer as its input, plus a graph input added to it on the GPU. */
async function checkFolded(op: string, testCase: ReduceCase, opset: number): Promise<void> {
  const model = reduceModel(op, testCase, opset, op === 'ReduceSum' ? 13 : 18);
  const outShape = reducedShape(testCase);
  const data = fillFor(op)?.(testCase.shape) ?? randomTensor(testCase.shape, 3);
  const graph = new GraphBuilder(`folded_${op.toLowerCase()}`).input('x', 'FP32', outShape).initializer('data', 'FP32', data.shape, data.data);
  for (const { name, tensor } of model.initializers ?? []) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
  const bytes = graph.node(op, model.nodeInputs ? ['data', ...model.nodeInputs.slice(1)] : ['data'], ['folded'], model.attributes)
    .node('Add', ['x', 'folded'], ['y']).output('y', 'FP32', outShape).toBytes({ opset });
  await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: outShape }], [{ name: 'y', shape: outShape }]);
}

for (const op of ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd']) {
  describe(op, () => {
    // ReduceSum took axes as an input from opset 13, the others from 18.
    const attributeOpset = op === 'ReduceSum' ? 11 : 13;
    const inputOpset = op === 'ReduceSum' ? 13 : 18;
    for (const testCase of attributeCases) {
      it(`opset ${attributeOpset} attribute: ${label(testCase)}`, () => check(gpu, op, testCase, attributeOpset));
    }
    for (const testCase of inputCases) {
      it(`opset ${inputOpset} input: ${label(testCase)}`, () => check(gpu, op, testCase, inputOpset));
    }
    if (op === 'ReduceSum') {
      for (const testCase of inputCases.slice(0, 4)) {
        it(`opset 18 input: ${label(testCase)}`, () => check(gpu, op, testCase, 18));
      }
    }
    // Over nothing: the identity of the op (0, 1, -inf, +inf) and 0 for the mean, as ORT gives.
    it('along an empty axis: [0, 3] over axis 0', () => check(gpu, op, { shape: [0, 3], axes: [0], keepdims: 0 }, attributeOpset));
    it('with no outputs: [3, 0] over axis 0', () => check(gpu, op, { shape: [3, 0], axes: [0], keepdims: 1 }, attributeOpset));
    const integer = INTEGER[op];
    if (integer) {
      it(`on INT64: ${label(integer)}`, () => {
        const model = reduceModel(op, integer, attributeOpset, op === 'ReduceSum' ? 13 : 18);
        return checkOneNode(gpu, {
          ...model, inputs: [{ name: 'x', shape: integer.shape, datatype: 'INT64', fill: (shape: number[]) => randomIntegers(shape, -1000, 1000) }],
          output: undefined, outputs: [{ name: 'y', shape: reducedShape(integer), datatype: 'INT64' }],
        });
      });
    }
    for (const [testCase, opset] of FOLDED[op]) {
      it(`folded on the host at opset ${opset}: ${label(testCase)}`, () => checkFolded(op, testCase, opset));
    }
  });
}

for (const op of ['Softmax', 'LogSoftmax']) {
  describe(op, () => {
    for (const axis of [-1, 0, 1, 2, -3]) {
      // ±1000 overflows exp() unless the row maximum is subtracted first.
      it(`axis ${axis} of [3, 4, 5], inputs ±1000`, () =>
        checkOneNode(gpu, { op, inputs: [['x', [3, 4, 5]]], output: [3, 4, 5], attributes: { axis }, scale: 1000 }));
    }
    it('default axis (last) on [5, 9], inputs ±20', () =>
      checkOneNode(gpu, { op, inputs: [['x', [5, 9]]], output: [5, 9], scale: 20 }));
    it('rows longer than the workgroup, strided: axis 0 of [1000, 3]', () =>
      checkOneNode(gpu, { op, inputs: [['x', [1000, 3]]], output: [1000, 3], attributes: { axis: 0 }, scale: 10 }));
    it('long rows with elements apart: axis 1 of [3, 100, 5]', () =>
      checkOneNode(gpu, { op, inputs: [['x', [3, 100, 5]]], output: [3, 100, 5], attributes: { axis: 1 }, scale: 30 }));
    it('rows of one element: axis 1 of [4, 1, 3]', () =>
      checkOneNode(gpu, { op, inputs: [['x', [4, 1, 3]]], output: [4, 1, 3], attributes: { axis: 1 }, scale: 5 }));
    it('a 1-D input of 67', () =>
      checkOneNode(gpu, { op, inputs: [['x', [67]]], output: [67], attributes: { axis: 0 }, scale: 50 }));
    it('attention-style masks: -inf, the lowest float and fully masked rows', () =>
      checkOneNode(gpu, {
        op, inputs: [{ name: 'x', shape: [6, 9], fill: masked }], output: [6, 9], attributes: { axis: -1 },
      }));
    it('an empty input [0, 5]', () => checkOneNode(gpu, { op, inputs: [['x', [0, 5]]], output: [0, 5] }));
    it('empty rows [4, 0]', () => checkOneNode(gpu, { op, inputs: [['x', [4, 0]]], output: [4, 0] }));
    it('opset 11 coerces to 2-D at axis 1 of [2, 3, 5]', () =>
      checkOneNode(gpu, { op, inputs: [['x', [2, 3, 5]]], output: [2, 3, 5], attributes: { axis: 1 }, opset: 11, scale: 100 }));
    it('opset 11 default axis (1) on [3, 2, 7]', () =>
      checkOneNode(gpu, { op, inputs: [['x', [3, 2, 7]]], output: [3, 2, 7], opset: 11, scale: 100 }));
  });
}
