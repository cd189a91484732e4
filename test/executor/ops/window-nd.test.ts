/**
 * Window operators over volumes and LpPool against onnxruntime on fresh random inputs: 3-D Conv
 * (groups, strides, pads, dilations, auto_pad, bias, a fused Relu and residual, a folded
 * BatchNormalization), 3-D ConvTranspose (strides, pads, output_padding, output_shape, groups),
 * 3-D MaxPool and AveragePool (ceil_mode, count_include_pad), LpPool over 1 to 3 spatial dims at
 * opsets 11 and 18, GlobalLpPool, 1-D cases of the 2-D kernels, and empty batches.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import { checkModelAgainstOrt, checkOneNode } from '../numerics/one-node.ts';
import { randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** One window node over `x` with constant weights (and bias), its output shape left to onnxruntime. */
async function windowCase(op: string, xShape: number[], attributes: Record<string, AttributeValue>, weights?: number[], bias?: number, opset = 13): Promise<void> {
  const graph = new GraphBuilder(op.toLowerCase()).input('x', 'FP32', xShape);
  const inputs = ['x'];
  if (weights) {
    graph.initializer('w', 'FP32', weights, randomTensor(weights, 0.5).data);
    inputs.push('w');
  }
  if (bias !== undefined) {
    graph.initializer('b', 'FP32', [bias], randomTensor([bias]).data);
    inputs.push('b');
  }
  graph.node(op, inputs, ['y'], attributes, `${op.toLowerCase()}_under_test`).output('y', 'FP32', []);
  await checkRuns(gpu, unrankedOutputs(graph, opset), [0, 1].map(() => new Map([['x', randomTensor(xShape)]])));
}

describe('Conv 3-D', () => {
  it('3×2×3 kernel, pads, bias', () => windowCase('Conv', [2, 3, 5, 6, 7], { pads: [1, 0, 1, 1, 1, 0] }, [4, 3, 3, 2, 3], 4));
  it('strides, dilations, groups', () => windowCase('Conv', [1, 4, 7, 8, 9], { strides: [2, 1, 2], dilations: [1, 2, 1], group: 2 }, [6, 2, 2, 3, 2]));
  it('auto_pad SAME_UPPER, depthwise', () => windowCase('Conv', [1, 3, 5, 5, 6], { auto_pad: 'SAME_UPPER', strides: [2, 2, 2], group: 3 }, [3, 1, 3, 3, 3], 3));
  it('a 1×1×1 kernel and an empty batch', async () => {
    await windowCase('Conv', [1, 5, 2, 3, 4], {}, [7, 5, 1, 1, 1], 7);
    await windowCase('Conv', [0, 2, 3, 3, 3], {}, [2, 2, 2, 2, 2]);
  });
  it('with a BatchNormalization folded in, a residual Add and a Relu fused', () => {
    const graph = new GraphBuilder('conv3d_bn_relu').input('x', 'FP32', [1, 3, 4, 5, 6]).input('skip', 'FP32', [1, 4, 4, 5, 6])
      .initializer('w', 'FP32', [4, 3, 3, 3, 3], randomTensor([4, 3, 3, 3, 3], 0.4).data).initializer('b', 'FP32', [4], randomTensor([4]).data);
    for (const name of ['gamma', 'beta', 'mean']) graph.initializer(name, 'FP32', [4], randomTensor([4]).data);
    graph.initializer('variance', 'FP32', [4], Float32Array.from({ length: 4 }, () => 0.5 + Math.random()));
    graph.node('Conv', ['x', 'w', 'b'], ['c'], { pads: [1, 1, 1, 1, 1, 1] }).node('BatchNormalization', ['c', 'gamma', 'beta', 'mean', 'variance'], ['n'])
      .node('Add', ['n', 'skip'], ['s']).node('Relu', ['s'], ['y']).output('y', 'FP32', [1, 4, 4, 5, 6]);
    return checkModelAgainstOrt(gpu, graph.toBytes({ opset: 13 }), [{ name: 'x', shape: [1, 3, 4, 5, 6] }, { name: 'skip', shape: [1, 4, 4, 5, 6] }],
      [{ name: 'y', shape: [1, 4, 4, 5, 6] }]);
  });
  it('1-D (the 2-D kernels with height 1)', () => windowCase('Conv', [2, 3, 11], { strides: [2], pads: [1, 2] }, [5, 3, 3], 5));
});

describe('ConvTranspose 3-D', () => {
  it('strides, pads, output_padding, bias', () =>
    windowCase('ConvTranspose', [1, 3, 3, 4, 2], { strides: [2, 2, 3], pads: [1, 0, 0, 0, 1, 1], output_padding: [1, 0, 1] }, [3, 2, 3, 2, 3], 2));
  it('groups and dilations', () => windowCase('ConvTranspose', [2, 4, 3, 3, 3], { group: 2, dilations: [2, 1, 1] }, [4, 3, 2, 2, 2]));
  it('output_shape', () => windowCase('ConvTranspose', [1, 2, 3, 3, 3], { strides: [2, 2, 2], output_shape: [6, 7, 6] }, [2, 2, 3, 3, 3]));
});

describe('MaxPool and AveragePool 3-D', () => {
  const x = [2, 3, 6, 7, 5];
  it.each<[string, Record<string, AttributeValue>]>([
    ['MaxPool', { kernel_shape: [2, 3, 2] }],
    ['MaxPool', { kernel_shape: [3, 3, 3], strides: [2, 2, 2], pads: [1, 1, 1, 1, 1, 1], ceil_mode: 1 }],
    ['MaxPool', { kernel_shape: [2, 2, 2], dilations: [2, 1, 2] }],
    ['AveragePool', { kernel_shape: [3, 2, 3], pads: [1, 1, 1, 1, 0, 1] }],
    ['AveragePool', { kernel_shape: [3, 2, 3], pads: [1, 1, 1, 1, 0, 1], count_include_pad: 1 }],
    ['AveragePool', { kernel_shape: [2, 3, 2], strides: [2, 2, 2], ceil_mode: 1 }],
    ['AveragePool', { kernel_shape: [3, 3, 3], auto_pad: 'SAME_LOWER' }],
  ])('%s %j', (op, attributes) => windowCase(op, x, attributes));
  it('1-D MaxPool and AveragePool (the 2-D kernels)', async () => {
    await windowCase('MaxPool', [2, 3, 13], { kernel_shape: [3], strides: [2], pads: [1, 1] });
    await windowCase('AveragePool', [2, 3, 13], { kernel_shape: [4], count_include_pad: 1, pads: [2, 1] });
  });
});

describe('LpPool and GlobalLpPool', () => {
  it.each<[number[], Record<string, AttributeValue>, number]>([
    [[2, 3, 11], { kernel_shape: [3], strides: [2], p: 2 }, 11],
    [[2, 3, 7, 8], { kernel_shape: [3, 2], pads: [1, 0, 1, 1], p: 1 }, 11],
    [[1, 2, 5, 6, 7], { kernel_shape: [2, 3, 2], strides: [1, 2, 2], p: 3 }, 11],
    [[2, 3, 9, 9], { kernel_shape: [3, 3], dilations: [2, 1], ceil_mode: 1, strides: [2, 2], p: 2 }, 18],
  ])('LpPool on %j with %j (opset %i)', (shape, attributes, opset) => windowCase('LpPool', shape, attributes, undefined, undefined, opset));
  it.each([[[2, 3, 9]], [[2, 3, 5, 6]], [[1, 2, 3, 4, 5]]])('GlobalLpPool on %j, p = 2 and 3', async (shape) => {
    await windowCase('GlobalLpPool', shape, {});
    await windowCase('GlobalLpPool', shape, { p: 3 });
  });
  it('LpPool with an empty batch', () => checkOneNode(gpu, { op: 'LpPool', inputs: [['x', [0, 2, 5, 5]]], output: [0, 2, 4, 4], attributes: { kernel_shape: [2, 2] }, opset: 11 }));
});
