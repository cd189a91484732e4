/**
 * Data-movement and shape operators, one node at a time, against onnxruntime on fresh random
 * inputs (odd sizes, negative axes and indices, every mode), each also folded on the host when
 * its inputs are constant; then generated tensors (Shape, Size, Constant, ConstantOfShape,
 * Range) that feed GPU kernels, and shape subgraphs evaluated on the CPU per input shape.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileGraph } from '../../../services/executor/compiler/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { float, floats, GraphBuilder, tensorAttribute, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import { decodeModel, type HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, checkOneNode, expectRefused, fp32, int64, type OutputSpec } from './one-node.ts';
import { expectMatchesOrt, randomIntegers, randomTensor } from './ort-reference.ts';

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
  it('the mask output, when the graph reads it, is refused', () =>
    expectRefused(gpu, {
      op: 'Dropout', inputs: [['x', [3, 4]]], outputs: [{ name: 'y', shape: [3, 4] }, { name: 'mask', shape: [3, 4], datatype: 'BOOL' }], opset: 13,
    }, "output 'mask'"));
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
  it('starts computed on the GPU are refused at load', () =>
    expectRefused(gpu, {
      op: 'Slice', inputs: [['x', [3, 4]], { name: 's', shape: [1], datatype: 'INT64' }], output: [2, 4], nodeInputs: ['x', 's', 'e'], opset: 13,
      initializers: [{ name: 'e', tensor: int64([3]) }],
    }, "input 's' computed on the GPU"));
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
  it('repeats computed on the GPU are refused at load', () =>
    expectRefused(gpu, {
      op: 'Tile', inputs: [['x', [3, 4]], { name: 'r', shape: [2], datatype: 'INT64' }], output: [6, 4],
    }, "input 'r' computed on the GPU"));
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

describe('Shape', () => {
  it.each<[number | undefined, number | undefined, number[]]>([[undefined, undefined, [4]], [1, undefined, [3]], [-3, -1, [2]], [0, 10, [4]]])('start %s, end %s', async (start, end, outShape) => {
    const attributes: Record<string, AttributeValue> = {};
    if (start !== undefined) attributes.start = start;
    if (end !== undefined) attributes.end = end;
    const bytes = new GraphBuilder('shape').input('x', 'FP32', [2, 3, 5, 7]).node('Shape', ['x'], ['y'], attributes).output('y', 'INT64', outShape).toBytes({ opset: 15 });
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [2, 3, 5, 7] }], [{ name: 'y', shape: outShape }]);
  });
});

describe('Size', () => {
  it('of an input, returned and used by a kernel', async () => {
    const bytes = new GraphBuilder('size').input('x', 'FP32', [3, 'n'])
      .node('Size', ['x'], ['count']).node('Cast', ['count'], ['count_f'], { to: 1 }).node('Div', ['x', 'count_f'], ['y'])
      .output('y', 'FP32', [3, 'n']).output('count', 'INT64', []).toBytes();
    const model = await compileOnnxModel(gpu, bytes);
    try {
      for (const n of [1, 7]) await expectMatchesOrt(model, bytes, new Map([['x', randomTensor([3, n])]]));
    } finally {
      model.dispose();
    }
  });
});

describe('Constant', () => {
  it('outputs of every attribute kind, and a Constant feeding a kernel', async () => {
    const bytes = new GraphBuilder('constants')
      .input('x', 'FP32', [2, 3])
      .node('Constant', [], ['t'], { value: tensorAttribute('FP32', [2, 3], randomTensor([2, 3]).data) })
      .node('Constant', [], ['f'], { value_float: float(Math.random()) })
      .node('Constant', [], ['fs'], { value_floats: floats([Math.random(), -Math.random(), 0.5]) })
      .node('Constant', [], ['i'], { value_int: 7 })
      .node('Constant', [], ['is'], { value_ints: [3, -1, 4] })
      .node('Mul', ['x', 't'], ['y'])
      .output('y', 'FP32', [2, 3]).output('t', 'FP32', [2, 3]).output('f', 'FP32', []).output('fs', 'FP32', [3])
      .output('i', 'INT64', []).output('is', 'INT64', [3])
      .toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [2, 3] }], [{ name: 'y', shape: [2, 3] }]);
  });
});

describe('ConstantOfShape', () => {
  it.each<[string, HostTensor | undefined, Datatype]>([
    ['zeros by default', undefined, 'FP32'],
    ['a float value', fp32([Math.random() * 4 - 2], [1]), 'FP32'],
    ['an INT64 value', int64([-3], [1]), 'INT64'],
  ])('of a Shape: %s, used by a kernel and returned', async (_, value, datatype) => {
    const graph = new GraphBuilder('constant_of_shape').input('x', 'FP32', [3, 5])
      .node('Shape', ['x'], ['s'])
      .node('ConstantOfShape', ['s'], ['c'], value ? { value: tensorAttribute(value.datatype, value.shape, value.data) } : {});
    if (datatype === 'FP32') graph.node('Add', ['x', 'c'], ['y']);
    else graph.node('Cast', ['c'], ['cf'], { to: 1 }).node('Add', ['x', 'cf'], ['y']);
    const bytes = graph.output('y', 'FP32', [3, 5]).output('c', datatype, [3, 5]).toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [3, 5] }], [{ name: 'y', shape: [3, 5] }, { name: 'c', shape: [3, 5] }]);
  });
});

describe('Range', () => {
  it.each<[string, Datatype, number, number, number]>([
    ['FP32 ascending', 'FP32', Math.random() * 2 - 1, 7.3, 0.9],
    ['FP32 descending', 'FP32', 3.25, -4, -0.75],
    ['INT64 ascending', 'INT64', -3, 17, 4],
    ['INT64 descending', 'INT64', 10, -2, -3],
    ['INT64 empty', 'INT64', 5, 5, 1],
  ])('%s, folded at load', async (_, datatype, start, limit, delta) => {
    const count = Math.max(0, Math.ceil((limit - start) / delta));
    const scalar = (x: number) => (datatype === 'FP32' ? fp32([x], []) : int64([x], []));
    const graph = new GraphBuilder('range').input('x', 'FP32', [count]);
    for (const [name, x] of [['start', start], ['limit', limit], ['delta', delta]] as const) {
      const tensor = scalar(x);
      graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
    }
    graph.node('Range', ['start', 'limit', 'delta'], ['r']);
    if (datatype === 'FP32') graph.node('Add', ['x', 'r'], ['y']);
    else graph.node('Cast', ['r'], ['rf'], { to: 1 }).node('Add', ['x', 'rf'], ['y']);
    const bytes = graph.output('y', 'FP32', [count]).output('r', datatype, [count]).toBytes();
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [count] }], [{ name: 'y', shape: [count] }, { name: 'r', shape: [count] }]);
  });

  it('with its limit from a Shape, evaluated per input shape', async () => {
    const bytes = new GraphBuilder('range_of_shape').input('x', 'FP32', ['batch', 'length'])
      .initializer('zero', 'INT64', [], BigInt64Array.of(0n)).initializer('one', 'INT64', [], BigInt64Array.of(1n))
      .initializer('axis', 'INT64', [], BigInt64Array.of(1n))
      .node('Shape', ['x'], ['s']).node('Gather', ['s', 'axis'], ['length'])
      .node('Range', ['zero', 'length', 'one'], ['positions']).node('Cast', ['positions'], ['pf'], { to: 1 })
      .node('Add', ['x', 'pf'], ['y'])
      .output('y', 'FP32', ['batch', 'length'])
      .toBytes();
    const model = await compileOnnxModel(gpu, bytes);
    try {
      for (const shape of [[2, 3], [4, 11], [1, 1]]) await expectMatchesOrt(model, bytes, new Map([['x', randomTensor(shape)]]));
    } finally {
      model.dispose();
    }
  });
});

describe('shape subgraphs run on the host', () => {
  it('Shape → Gather → Unsqueeze → Concat → Reshape: only the Relu after it dispatches', async () => {
    // x [batch, 12] → Reshape to [batch, 3, 4] with the target computed from x's own shape, the
    // way exporters write dynamic reshapes.
    const bytes = new GraphBuilder('dynamic_reshape')
      .input('x', 'FP32', ['batch', 12])
      .initializer('first', 'INT64', [], BigInt64Array.of(0n))
      .initializer('zero_axis', 'INT64', [1], BigInt64Array.of(0n))
      .initializer('tail', 'INT64', [2], BigInt64Array.of(3n, 4n))
      .node('Shape', ['x'], ['shape'], {}, 'shape')
      .node('Gather', ['shape', 'first'], ['batch_size'], { axis: 0 }, 'gather')
      .node('Unsqueeze', ['batch_size', 'zero_axis'], ['batch_1d'], {}, 'unsqueeze')
      .node('Concat', ['batch_1d', 'tail'], ['target'], { axis: 0 }, 'concat')
      .node('Reshape', ['x', 'target'], ['cube'], {}, 'reshape')
      .node('Relu', ['cube'], ['y'], {}, 'relu')
      .output('y', 'FP32', ['batch', 3, 4])
      .output('target', 'INT64', [3])
      .toBytes({ opset: 13 });
    const graph = compileGraph(decodeModel(bytes), { precision: 'fp32', traits: { gemmAlgorithm: 'tiled' } });
    const byKind = (kind: string) => graph.steps.filter((step) => step.kind === kind).map((step) => step.node.opType);
    expect(byKind('host')).toEqual(['Shape', 'Gather', 'Unsqueeze', 'Concat']);
    expect(byKind('device')).toEqual(['Reshape', 'Relu']);
    const model = await compileOnnxModel(gpu, bytes);
    try {
      expect(model.stepCount).toBe(1);
      // Every batch size re-evaluates the subgraph: a target computed once would break the others.
      for (const batch of [2, 5, 1]) {
        const outputs = await expectMatchesOrt(model, bytes, new Map([['x', randomTensor([batch, 12])]]));
        expect(outputs.get('y')!.shape).toEqual([batch, 3, 4]);
      }
    } finally {
      model.dispose();
    }
  });

  it('shape arithmetic (Slice, integer Div, Cast, Sqrt) feeding GPU kernels', async () => {
    // The attention-style pattern: x [batch, seq, 12] split into 3 heads of 4 with the sizes
    // computed from x's shape, transposed, then scaled by 1 / sqrt(head size) computed from the
    // shape as a float.
    const bytes = new GraphBuilder('heads')
      .input('x', 'FP32', ['batch', 'seq', 12])
      .initializer('zero', 'INT64', [1], BigInt64Array.of(0n)).initializer('two', 'INT64', [1], BigInt64Array.of(2n))
      .initializer('last', 'INT64', [], BigInt64Array.of(2n)).initializer('heads', 'INT64', [1], BigInt64Array.of(3n))
      .initializer('axis0', 'INT64', [1], BigInt64Array.of(0n))
      .node('Shape', ['x'], ['shape'])
      .node('Slice', ['shape', 'zero', 'two'], ['batch_seq'])
      .node('Gather', ['shape', 'last'], ['width'])
      .node('Unsqueeze', ['width', 'axis0'], ['width_1d'])
      .node('Div', ['width_1d', 'heads'], ['head_size'])
      .node('Concat', ['batch_seq', 'heads', 'head_size'], ['target'], { axis: 0 })
      .node('Reshape', ['x', 'target'], ['split'])
      .node('Transpose', ['split'], ['by_head'], { perm: [0, 2, 1, 3] })
      .node('Cast', ['head_size'], ['head_size_f'], { to: 1 })
      .node('Sqrt', ['head_size_f'], ['scale'])
      .node('Div', ['by_head', 'scale'], ['y'])
      .output('y', 'FP32', ['batch', 3, 'seq', 4])
      .toBytes({ opset: 13 });
    const graph = compileGraph(decodeModel(bytes), { precision: 'fp32', traits: { gemmAlgorithm: 'tiled' } });
    expect(graph.steps.filter((step) => step.kind === 'device').map((step) => step.node.opType)).toEqual(['Reshape', 'Transpose', 'Div']);
    const model = await compileOnnxModel(gpu, bytes);
    try {
      expect(model.stepCount).toBe(2);
      for (const [batch, seq] of [[2, 5], [1, 1], [3, 7]]) {
        await expectMatchesOrt(model, bytes, new Map([['x', randomTensor([batch, seq, 12])]]));
      }
    } finally {
      model.dispose();
    }
  });
});

describe('refusals', () => {
  it('an unsupported operator (NonZero) names the operator and node', () =>
    expectRefused(gpu, { op: 'NonZero', inputs: [['x', [3, 4]]], outputs: [{ name: 'y', shape: [2, 12], datatype: 'INT64' }], nodeName: 'where_nonzero' }, 'is not supported'));
});
