/**
 * Data-movement operators, one node at a time, against onnxruntime on fresh random inputs (odd
 * sizes, negative axes and indices, every mode), each also folded on the host when its inputs are
 * constant. Generated tensors and shape subgraphs are in generated-tensors.test.ts.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { float, GraphBuilder, tensorAttribute, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, checkOneNode, expectRefused, fp32, int64, type OutputSpec } from './one-node.ts';
import { randomIntegers, randomTensor } from './ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const INT64_MAX = 9223372036854775807n;
const product = (shape: readonly number[]) => shape.reduce((total, dim) => total * dim, 1);
const indices = (low: number, high: number) => (shape: number[]) => randomIntegers(shape, low, high);

/**
 * `op` over initializers (fresh random values in every model) runs on the CPU at load; adding
 * a graph input keeps a GPU kernel that reads the folded value.
 */
async function checkFolded(
  op: string, data: HostTensor, parameters: HostTensor[], outShape: number[], attributes: Record<string, AttributeValue> = {}, opset = 13,
): Promise<void> {
  const graph = new GraphBuilder(`folded_${op.toLowerCase()}`).input('x', 'FP32', outShape)
    .initializer('data', data.datatype, data.shape, data.data);
  const names = ['data'];
  parameters.forEach((tensor, index) => {
    graph.initializer(`p${index}`, tensor.datatype, tensor.shape, tensor.data);
    names.push(`p${index}`);
  });
  const bytes = graph.node(op, names, ['folded'], attributes).node('Add', ['x', 'folded'], ['y']).output('y', 'FP32', outShape).toBytes({ opset });
  await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: outShape }], [{ name: 'y', shape: outShape }]);
}

describe('Transpose', () => {
  const cases: Array<[shape: number[], perm: number[] | undefined]> = [
    [[13, 17], [1, 0]],
    [[3, 5, 7], [2, 0, 1]],
    [[3, 5, 7], [1, 0, 2]],
    [[3, 5, 7], [0, 2, 1]],
    [[3, 5, 7], undefined],
    [[2, 3, 4, 5], [0, 2, 3, 1]],
    [[2, 3, 4, 5], [3, 1, 2, 0]],
    [[2, 1, 3, 1, 5, 3], [5, 4, 3, 2, 1, 0]],
    [[9], [0]],
    [[0, 3, 2], undefined],
    // Nine dims that cannot merge: more than one copy kernel unravels.
    [[2, 3, 2, 2, 3, 2, 2, 3, 2], [8, 7, 6, 5, 4, 3, 2, 1, 0]],
  ];
  it.each(cases)('%j with perm %j', (shape, perm) =>
    checkOneNode(gpu, {
      op: 'Transpose', inputs: [['x', shape]], output: (perm ?? shape.map((_, axis) => shape.length - 1 - axis)).map((axis) => shape[axis]),
      attributes: perm ? { perm } : {},
    }));
  it('INT64 values move unchanged', () =>
    checkOneNode(gpu, {
      op: 'Transpose', inputs: [{ name: 'x', shape: [3, 7], datatype: 'INT64', fill: indices(-1e6, 1e6) }],
      outputs: [{ name: 'y', shape: [7, 3], datatype: 'INT64' }], attributes: { perm: [1, 0] },
    }));
  it('folded on the host', () => checkFolded('Transpose', randomTensor([3, 5, 7]), [], [7, 3, 5], { perm: [2, 0, 1] }));
});

describe('Reshape', () => {
  const reshapes: Array<[input: number[], target: number[], out: number[], allowzero?: number]> = [
    [[3, 5, 7], [0, -1], [3, 35]],
    [[3, 5, 7], [-1], [105]],
    [[3, 5, 7], [7, 0, 3], [7, 5, 3]],
    [[3, 5, 7], [1, -1, 1, 7], [1, 15, 1, 7]],
    [[1, 1], [], []],
    [[2, 0, 3], [0, -1], [2, 0], 0],
    [[2, 0, 3], [3, 0], [3, 0], 1],
  ];
  it.each(reshapes)('%j to %j', (shape, target, output, allowzero) =>
    checkOneNode(gpu, {
      op: 'Reshape', inputs: [['x', shape]], output, nodeInputs: ['x', 'shape'], opset: 14,
      attributes: allowzero === undefined ? {} : { allowzero }, initializers: [{ name: 'shape', tensor: int64(target) }],
    }));
  it('folded on the host', () => checkFolded('Reshape', randomTensor([3, 4, 2]), [int64([0, -1])], [3, 8]));
});

describe('Flatten', () => {
  it.each([0, 1, 2, 3, -1, -3])('[3, 5, 7] at axis %i', (axis) => {
    const split = axis < 0 ? axis + 3 : axis;
    const shape = [3, 5, 7];
    return checkOneNode(gpu, { op: 'Flatten', inputs: [['x', shape]], output: [product(shape.slice(0, split)), product(shape.slice(split))], attributes: { axis } });
  });
  it('folded on the host', () => checkFolded('Flatten', randomTensor([3, 4, 2]), [], [12, 2], { axis: 2 }));
});

describe('Squeeze', () => {
  it.each<[number[], number[] | undefined, number[]]>([
    [[1, 5, 1, 7], [0, -2], [5, 7]],
    [[1, 5, 1, 7], undefined, [5, 7]],
    [[3, 1], [1], [3]],
  ])('%j axes %j (opset 13 input)', (shape, axes, output) =>
    checkOneNode(gpu, {
      op: 'Squeeze', inputs: [['x', shape]], output, opset: 13, nodeInputs: axes ? ['x', 'axes'] : ['x'],
      initializers: axes ? [{ name: 'axes', tensor: int64(axes) }] : [],
    }));
  it('axes attribute (opset 11)', () =>
    checkOneNode(gpu, { op: 'Squeeze', inputs: [['x', [5, 1, 3]]], output: [5, 3], opset: 11, attributes: { axes: [-2] } }));
  it('folded on the host, with and without axes', async () => {
    await checkFolded('Squeeze', randomTensor([3, 1, 2]), [int64([-2])], [3, 2]);
    await checkFolded('Squeeze', randomTensor([1, 3, 1]), [], [3]);
  });
});

describe('Unsqueeze', () => {
  it.each<[number[], number[], number[]]>([
    [[5, 7], [0, -1], [1, 5, 7, 1]],
    [[5, 7], [3, 1], [5, 1, 7, 1]],
    [[], [0], [1]],
  ])('%j axes %j (opset 13 input)', (shape, axes, output) =>
    checkOneNode(gpu, { op: 'Unsqueeze', inputs: [['x', shape]], output, opset: 13, nodeInputs: ['x', 'axes'], initializers: [{ name: 'axes', tensor: int64(axes) }] }));
  it('axes attribute (opset 11)', () =>
    checkOneNode(gpu, { op: 'Unsqueeze', inputs: [['x', [3, 5]]], output: [3, 1, 5], opset: 11, attributes: { axes: [1] } }));
  it('folded on the host', () => checkFolded('Unsqueeze', randomTensor([3, 2]), [int64([-1, 0])], [1, 3, 2, 1]));
});

describe('Identity', () => {
  it('[3, 5, 7]', () => checkOneNode(gpu, { op: 'Identity', inputs: [['x', [3, 5, 7]]], output: [3, 5, 7] }));
  it('folded on the host', () => checkFolded('Identity', randomTensor([4, 3]), [], [4, 3]));
});

describe('Dropout', () => {
  it('in inference is the identity (opset 13, ratio input, unused mask)', () =>
    checkOneNode(gpu, {
      op: 'Dropout', inputs: [['x', [7, 9]]], outputs: [{ name: 'y', shape: [7, 9] }], opset: 13, nodeInputs: ['x', 'ratio'],
      initializers: [{ name: 'ratio', tensor: fp32([0.4], []) }],
    }));
  it('opset 10 (ratio attribute)', () =>
    checkOneNode(gpu, { op: 'Dropout', inputs: [['x', [2, 3, 5]]], output: [2, 3, 5], opset: 10, attributes: { ratio: float(0.3) } }));
  it('a constant training_mode=true is refused at load', () =>
    expectRefused(gpu, {
      op: 'Dropout', inputs: [['x', [3, 4]]], output: [3, 4], opset: 13, nodeInputs: ['x', 'ratio', 'training'], nodeName: 'train_dropout',
      initializers: [{ name: 'ratio', tensor: fp32([0.5], []) }, { name: 'training', tensor: { datatype: 'BOOL', shape: [], data: Uint8Array.of(1) } }],
    }, 'training_mode=true'));
  // The mask output (all true) and training mode: test/executor/ops/dropout.test.ts.
});

describe('Concat', () => {
  const concats: Array<[axis: number, shapes: number[][], out: number[]]> = [
    [0, [[2, 5], [3, 5], [1, 5]], [6, 5]],
    [1, [[3, 1, 7], [3, 4, 7], [3, 2, 7], [3, 5, 7]], [3, 12, 7]],
    [-1, [[2, 3, 5], [2, 3, 1], [2, 3, 9]], [2, 3, 15]],
    [-2, [[4, 3], [1, 3], [2, 3]], [7, 3]],
    [1, [[2, 3, 5], [2, 0, 5], [2, 2, 5]], [2, 5, 5]],
  ];
  it.each(concats)('axis %i of %j', (axis, shapes, output) =>
    checkOneNode(gpu, { op: 'Concat', inputs: shapes.map((shape, index) => [`x${index}`, shape] as [string, number[]]), output, attributes: { axis } }));
  it('an input with an initializer and a Constant', async () => {
    const bytes = new GraphBuilder('concat_constants').input('x', 'FP32', [3, 4])
      .initializer('w', 'FP32', [3, 2], randomTensor([3, 2]).data)
      .node('Constant', [], ['c'], { value: tensorAttribute('FP32', [3, 1], randomTensor([3, 1]).data) })
      .node('Concat', ['w', 'x', 'c'], ['y'], { axis: 1 })
      .output('y', 'FP32', [3, 7]).toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [3, 4] }], [{ name: 'y', shape: [3, 7] }]);
  });
  it('one input with itself', async () => {
    const bytes = new GraphBuilder('concat_self').input('x', 'FP32', [3, 5]).node('Concat', ['x', 'x', 'x'], ['y'], { axis: -1 }).output('y', 'FP32', [3, 15]).toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [3, 5] }], [{ name: 'y', shape: [3, 15] }]);
  });
  it('INT64 tensors', () =>
    checkOneNode(gpu, {
      op: 'Concat', inputs: [{ name: 'a', shape: [3, 2], datatype: 'INT64', fill: indices(-99, 99) }, { name: 'b', shape: [3, 5], datatype: 'INT64', fill: indices(-99, 99) }],
      outputs: [{ name: 'y', shape: [3, 7], datatype: 'INT64' }], attributes: { axis: 1 },
    }));
  it('folded on the host, negative axis', async () => {
    const bytes = new GraphBuilder('folded_concat').input('x', 'FP32', [3, 9])
      .initializer('a', 'FP32', [3, 2], randomTensor([3, 2]).data).initializer('b', 'FP32', [3, 7], randomTensor([3, 7]).data)
      .node('Concat', ['a', 'b'], ['c'], { axis: -1 }).node('Add', ['x', 'c'], ['y']).output('y', 'FP32', [3, 9]).toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [3, 9] }], [{ name: 'y', shape: [3, 9] }]);
  });
  it('folded on the host: initializers of 360 000 elements each', async () => {
    const bytes = new GraphBuilder('folded_large_concat').input('x', 'FP32', [1200, 600])
      .initializer('a', 'FP32', [600, 600], randomTensor([600, 600]).data).initializer('b', 'FP32', [600, 600], randomTensor([600, 600]).data)
      .node('Concat', ['a', 'b'], ['c'], { axis: 0 }).node('Add', ['x', 'c'], ['y']).output('y', 'FP32', [1200, 600]).toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [1200, 600] }], [{ name: 'y', shape: [1200, 600] }]);
  });
});

describe('Split', () => {
  const outputsOf = (shapes: number[][]): OutputSpec[] => shapes.map((shape, index) => ({ name: `y${index}`, shape }));
  it('a split input (opset 13), uneven parts along axis 1', () =>
    checkOneNode(gpu, {
      op: 'Split', inputs: [['x', [3, 7, 5]]], outputs: outputsOf([[3, 2, 5], [3, 4, 5], [3, 1, 5]]), opset: 13, attributes: { axis: 1 },
      nodeInputs: ['x', 'split'], initializers: [{ name: 'split', tensor: int64([2, 4, 1]) }],
    }));
  it('equal parts without split (opset 13), negative axis', () =>
    checkOneNode(gpu, { op: 'Split', inputs: [['x', [4, 9]]], outputs: outputsOf([[4, 3], [4, 3], [4, 3]]), opset: 13, attributes: { axis: -1 } }));
  it('num_outputs=3 of 7 (opset 18): the last part is smaller', () =>
    checkOneNode(gpu, { op: 'Split', inputs: [['x', [7, 3]]], outputs: outputsOf([[3, 3], [3, 3], [1, 3]]), opset: 18, attributes: { axis: 0, num_outputs: 3 } }));
  it('num_outputs=4 of 10 along axis -1 (opset 18)', () =>
    checkOneNode(gpu, { op: 'Split', inputs: [['x', [2, 10]]], outputs: outputsOf([[2, 3], [2, 3], [2, 3], [2, 1]]), opset: 18, attributes: { axis: -1, num_outputs: 4 } }));
  it('split attribute (opset 11)', () =>
    checkOneNode(gpu, { op: 'Split', inputs: [['x', [5, 6]]], outputs: outputsOf([[5, 1], [5, 5]]), opset: 11, attributes: { axis: 1, split: [1, 5] } }));
  it('an empty part', () =>
    checkOneNode(gpu, {
      op: 'Split', inputs: [['x', [3, 5]]], outputs: outputsOf([[3, 5], [3, 0]]), opset: 13, attributes: { axis: 1 },
      nodeInputs: ['x', 'split'], initializers: [{ name: 'split', tensor: int64([5, 0]) }],
    }));
  it('folded on the host, a middle and a last output', async () => {
    const bytes = new GraphBuilder('folded_split').input('x', 'FP32', [4, 5])
      .initializer('data', 'FP32', [4, 9], randomTensor([4, 9]).data).initializer('sizes', 'INT64', [3], BigInt64Array.of(3n, 5n, 1n))
      .node('Split', ['data', 'sizes'], ['s0', 's1', 's2'], { axis: 1 }).node('Add', ['x', 's1'], ['y'])
      .output('y', 'FP32', [4, 5]).output('s2', 'FP32', [4, 1]).toBytes({ opset: 13 });
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [4, 5] }], [{ name: 'y', shape: [4, 5] }, { name: 's2', shape: [4, 1] }]);
  });
});

describe('Slice', () => {
  const shape = [5, 7, 9];
  const cases: Array<[label: string, starts: Array<number | bigint>, ends: Array<number | bigint>, axes: number[] | undefined, steps: number[] | undefined, out: number[]]> = [
    ['negative end on one axis', [1], [-1], [1], undefined, [5, 5, 9]],
    ['negative steps from clamped starts', [-1, 8], [-1000, 0], [0, 2], [-1, -3], [5, 7, 3]],
    ['steps of 2 with an INT64_MAX end, axes omitted', [0, 2], [INT64_MAX, 7], undefined, [2, 2], [3, 3, 9]],
    ['negative axis and start', [-4], [100], [-1], undefined, [5, 7, 4]],
    ['a full reverse with an end of -INT64_MAX', [INT64_MAX], [-INT64_MAX], [1], [-1], [5, 7, 9]],
    ['every axis, mixed steps', [4, 1, -2], [0, 6, -9], [0, 1, 2], [-2, 2, -1], [2, 3, 7]],
    ['an empty result', [3], [3], [0], undefined, [0, 7, 9]],
  ];
  it.each(cases)('%s', (_, starts, ends, axes, steps, output) => {
    const initializers = [{ name: 'starts', tensor: int64(starts) }, { name: 'ends', tensor: int64(ends) }];
    const nodeInputs = ['x', 'starts', 'ends'];
    if (axes || steps) {
      nodeInputs.push(axes ? 'axes' : '');
      if (axes) initializers.push({ name: 'axes', tensor: int64(axes) });
    }
    if (steps) {
      nodeInputs.push('steps');
      initializers.push({ name: 'steps', tensor: int64(steps) });
    }
    return checkOneNode(gpu, { op: 'Slice', inputs: [['x', shape]], output, opset: 13, nodeInputs, initializers });
  });
  it('attributes (opset 9)', () =>
    checkOneNode(gpu, { op: 'Slice', inputs: [['x', [6, 5]]], output: [3, 5], opset: 9, attributes: { starts: [-4], ends: [5], axes: [0] } }));
  it('folded on the host, negative steps and axes', () =>
    checkFolded('Slice', randomTensor([5, 7, 9]), [int64([4, -2]), int64([0, -9]), int64([0, -1]), int64([-2, -1])], [2, 7, 7]));
});

describe('Gather', () => {
  const cases: Array<[data: number[], indicesShape: number[], axis: number, out: number[]]> = [
    [[5, 7], [4], 0, [4, 7]],
    [[5, 7], [2, 3], 1, [5, 2, 3]],
    [[5, 7], [], 0, [7]],
    [[3, 5, 7], [], 1, [3, 7]],
    [[3, 5, 7], [6], -1, [3, 5, 6]],
    [[11], [3, 2], 0, [3, 2]],
    [[5, 3], [0], 0, [0, 3]],
  ];
  it.each(cases)('data %j, indices %j, axis %i (negative indices included)', (data, indicesShape, axis, output) => {
    const length = data[axis < 0 ? axis + data.length : axis];
    return checkOneNode(gpu, {
      op: 'Gather', inputs: [['x', data], { name: 'i', shape: indicesShape, datatype: 'INT64', fill: indices(-length, length - 1) }], output, attributes: { axis },
    });
  });
  it('indices as an initializer, INT32', () =>
    checkOneNode(gpu, {
      op: 'Gather', inputs: [['x', [6, 5]]], output: [6, 3], attributes: { axis: 1 }, nodeInputs: ['x', 'i'],
      initializers: [{ name: 'i', tensor: { datatype: 'INT32', shape: [3], data: Int32Array.from([4, -5, 2]) } }],
    }));
  it('an embedding lookup: an initializer table, INT64 ids as the input', () =>
    checkOneNode(gpu, {
      op: 'Gather', inputs: [{ name: 'ids', shape: [2, 7], datatype: 'INT64', fill: indices(0, 49) }], output: [2, 7, 9], nodeInputs: ['table', 'ids'],
      initializers: [{ name: 'table', tensor: randomTensor([50, 9]) }],
    }));
  it('INT64 data', () =>
    checkOneNode(gpu, {
      op: 'Gather', inputs: [{ name: 'x', shape: [4, 3], datatype: 'INT64', fill: indices(-1e5, 1e5) }, { name: 'i', shape: [5], datatype: 'INT64', fill: indices(-4, 3) }],
      outputs: [{ name: 'y', shape: [5, 3], datatype: 'INT64' }],
    }));
  it('folded on the host, negative indices', () => checkFolded('Gather', randomTensor([5, 7]), [int64([-1, 0, 3, -5])], [5, 4], { axis: 1 }));
  it('FP32 indices are refused at load', () =>
    expectRefused(gpu, { op: 'Gather', inputs: [['x', [3, 4]], ['i', [2]]], output: [2, 4] }, 'FP32 indices'));
});

describe('Expand', () => {
  it.each<[number[], number[], number[]]>([
    [[3, 1], [2, 3, 4], [2, 3, 4]],
    [[1], [5], [5]],
    [[4], [3, 1], [3, 4]],
    [[2, 3, 4], [3, 1], [2, 3, 4]],
    [[2, 1, 5], [1, 3, 1], [2, 3, 5]],
    [[], [2, 3], [2, 3]],
    [[3, 1], [0, 3, 4], [0, 3, 4]],
  ])('%j to %j', (shape, target, output) =>
    checkOneNode(gpu, { op: 'Expand', inputs: [['x', shape]], output, nodeInputs: ['x', 'shape'], initializers: [{ name: 'shape', tensor: int64(target) }] }));
  it('folded on the host', () => checkFolded('Expand', randomTensor([3, 1]), [int64([2, 3, 4])], [2, 3, 4]));
});

describe('Tile', () => {
  it.each<[number[], number[]]>([
    [[2, 3], [2, 3]], [[3, 1, 4], [1, 4, 2]], [[7], [3]], [[2, 5], [1, 1]], [[2, 3], [0, 2]],
    // Every dim tiled in rank 5: the walk has 10 dims, more than one copy kernel unravels.
    [[2, 3, 2, 3, 2], [2, 2, 3, 2, 2]],
  ])('%j by %j', (shape, repeats) =>
    checkOneNode(gpu, {
      op: 'Tile', inputs: [['x', shape]], output: shape.map((dim, axis) => dim * repeats[axis]), nodeInputs: ['x', 'repeats'],
      initializers: [{ name: 'repeats', tensor: int64(repeats) }],
    }));
  it('folded on the host', () => checkFolded('Tile', randomTensor([3, 1, 4]), [int64([1, 4, 2])], [3, 4, 8]));
});

describe('Pad', () => {
  const cases: Array<[mode: string, shape: number[], pads: number[], out: number[], opset?: number]> = [
    ['constant', [3, 5], [1, 2, 3, 1], [7, 8]],
    ['constant', [2, 3, 5], [0, 1, 0, 1, 0, 2], [3, 4, 7]],
    // Negative pads crop.
    ['constant', [5, 7], [-1, 2, 0, -3], [4, 6]],
    ['reflect', [4, 5], [2, 3, 1, 4], [7, 12]],
    ['reflect', [2, 3, 5], [0, 2, 1, 1, 0, 3], [3, 5, 9]],
    ['edge', [3, 5], [2, 4, 3, 1], [8, 10]],
    ['edge', [2, 3, 5], [1, 0, 2, 0, 3, 1], [3, 6, 8]],
    ['wrap', [3, 5], [2, 3, 1, 4], [6, 12], 19],
    ['wrap', [2, 3, 5], [0, 1, 2, 1, 2, 3], [3, 6, 10], 19],
    // Wrapping goes round what the negative pad on the other side leaves.
    ['wrap', [4, 6], [-1, 2, 1, -2], [4, 6], 19],
    ['wrap', [4, 7], [1, -2, -1, 3], [4, 8], 19],
    ['reflect', [5, 6], [-1, 2, 1, -2], [5, 6], 19],
    ['edge', [5, 6], [-2, 2, 1, -3], [4, 5], 19],
    ['constant', [0, 3], [1, 1, 1, 1], [2, 5]],
  ];
  it.each(cases)("mode '%s' on %j with pads %j", (mode, shape, pads, output, opset) =>
    checkOneNode(gpu, {
      op: 'Pad', inputs: [['x', shape]], output, attributes: { mode }, opset: opset ?? 13, nodeInputs: ['x', 'pads', 'value'],
      initializers: [{ name: 'pads', tensor: int64(pads) }, { name: 'value', tensor: fp32([mode === 'constant' ? 2.5 : 0], []) }],
    }));
  it('constant mode without a value pads with zero', () =>
    checkOneNode(gpu, { op: 'Pad', inputs: [['x', [3, 4]]], output: [5, 7], nodeInputs: ['x', 'pads'], opset: 13, initializers: [{ name: 'pads', tensor: int64([1, 2, 1, 1]) }] }));
  it('axes input (opset 18) with a negative axis', () =>
    checkOneNode(gpu, {
      op: 'Pad', inputs: [['x', [2, 3, 5]]], output: [2, 3, 8], attributes: { mode: 'reflect' }, opset: 18, nodeInputs: ['x', 'pads', '', 'axes'],
      initializers: [{ name: 'pads', tensor: int64([2, 1]) }, { name: 'axes', tensor: int64([-1]) }],
    }));
  it('constant mode on INT64 data', () =>
    checkOneNode(gpu, {
      op: 'Pad', inputs: [{ name: 'x', shape: [3, 4], datatype: 'INT64', fill: indices(-50, 50) }], outputs: [{ name: 'y', shape: [4, 7], datatype: 'INT64' }], opset: 13,
      nodeInputs: ['x', 'pads', 'value'], initializers: [{ name: 'pads', tensor: int64([1, 2, 0, 1]) }, { name: 'value', tensor: int64([-7], []) }],
    }));
  it('pads attribute (opset 10)', () =>
    checkOneNode(gpu, { op: 'Pad', inputs: [['x', [3, 4]]], output: [4, 7], opset: 10, attributes: { pads: [1, 0, 0, 3], value: float(-1.5) } }));
  it.each<[string, number[], number[]]>([['constant', [1, -1, 2, 1], [6, 7]], ['reflect', [2, 3, 1, 2], [6, 12]], ['edge', [3, 0, 1, 4], [7, 11]]])(
    "mode '%s' folded on the host", (mode, pads, out) => checkFolded('Pad', randomTensor([3, 7]), [int64(pads), fp32([1.5], [])], out, { mode }));
  it.each<[number[], number[]]>([[[2, 3, 1, 4], [6, 12]], [[-1, 2, 1, -2], [3, 5]]])("mode 'wrap' folded on the host, pads %j", (pads, out) =>
    checkFolded('Pad', randomTensor([3, 5]), [int64(pads)], out, { mode: 'wrap' }, 19));
  it("mode 'mirror' (not an ONNX mode) is refused at load", () =>
    expectRefused(gpu, {
      op: 'Pad', inputs: [['x', [3, 4]]], output: [5, 4], attributes: { mode: 'mirror' }, nodeInputs: ['x', 'pads'], opset: 13, nodeName: 'mirror_pad',
      initializers: [{ name: 'pads', tensor: int64([1, 0, 1, 0]) }],
    }, "mode='mirror'"));
});
