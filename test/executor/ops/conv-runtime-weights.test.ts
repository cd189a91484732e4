/**
 * Conv and ConvTranspose whose weights (and bias) are graph inputs, against onnxruntime on fresh
 * random inputs: Conv in 1 to 3 spatial dims (pads, strides, dilations, groups, auto_pad, a fused
 * Relu; after it a BatchNormalization that cannot fold, a residual Add and a Relu), ConvTranspose
 * without kernel_shape, its window read from the weights' shape (output_shape,
 * output_padding, auto_pad SAME_UPPER / SAME_LOWER, dilations, groups, 1-D to 3-D), and the
 * precise refusals of weights that do not fit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import { randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** A graph with x, w (and b) as inputs feeding one `op` node, optionally followed by a Relu. */
function runtimeWeightsGraph(op: string, xShape: number[], wShape: number[], attributes: Record<string, AttributeValue>, bias?: number, relu = false): GraphBuilder {
  const graph = new GraphBuilder(`${op.toLowerCase()}_runtime_weights`).input('x', 'FP32', xShape).input('w', 'FP32', wShape);
  const inputs = ['x', 'w'];
  if (bias !== undefined) {
    graph.input('b', 'FP32', [bias]);
    inputs.push('b');
  }
  graph.node(op, inputs, [relu ? 'c' : 'y'], attributes);
  if (relu) graph.node('Relu', ['c'], ['y']);
  return graph.output('y', 'FP32', []);
}

/** Two runs with fresh x, w (and b) through us and onnxruntime. */
async function runtimeWeightsCase(op: string, xShape: number[], wShape: number[], attributes: Record<string, AttributeValue>, bias?: number, relu = false): Promise<void> {
  const bytes = unrankedOutputs(runtimeWeightsGraph(op, xShape, wShape, attributes, bias, relu), 13);
  const runs = [0, 1].map(() => {
    const inputs = new Map([['x', randomTensor(xShape)], ['w', randomTensor(wShape, 0.5)]]);
    if (bias !== undefined) inputs.set('b', randomTensor([bias]));
    return inputs;
  });
  await checkRuns(gpu, bytes, runs);
}

describe('Conv with weights given at run time', () => {
  it('2-D with pads and bias', () => runtimeWeightsCase('Conv', [2, 3, 9, 10], [5, 3, 3, 3], { pads: [1, 1, 1, 1] }, 5));
  it('2-D strides, asymmetric pads, dilations', () => runtimeWeightsCase('Conv', [1, 2, 11, 7], [3, 2, 3, 2], { strides: [2, 3], pads: [1, 0, 2, 1], dilations: [2, 1] }));
  it('groups and auto_pad SAME_UPPER, then a fused Relu', () => runtimeWeightsCase('Conv', [1, 6, 7, 9], [4, 3, 3, 3], { group: 2, auto_pad: 'SAME_UPPER', strides: [2, 2] }, 4, true));
  it('depthwise with auto_pad SAME_LOWER', () => runtimeWeightsCase('Conv', [2, 5, 6, 5], [5, 1, 2, 3], { group: 5, auto_pad: 'SAME_LOWER' }));
  it('1-D and 3-D without kernel_shape', async () => {
    await runtimeWeightsCase('Conv', [2, 3, 13], [4, 3, 5], { strides: [2], pads: [2, 1] }, 4);
    await runtimeWeightsCase('Conv', [1, 2, 5, 6, 7], [3, 2, 2, 3, 2], { pads: [1, 0, 1, 0, 1, 1] }, 3);
  });
  it('an empty batch', () => runtimeWeightsCase('Conv', [0, 3, 6, 6], [2, 3, 3, 3], {}, 2));
  it('kernel_shape given beside the weights', () => runtimeWeightsCase('Conv', [1, 3, 8, 8], [2, 3, 3, 3], { kernel_shape: [3, 3] }));
});

describe('Conv with weights given at run time in a fused chain', () => {
  it('then BatchNormalization (not folded: the weights are unknown at load), a residual Add and a Relu', async () => {
    const graph = new GraphBuilder('conv_runtime_bn_relu').input('x', 'FP32', [1, 3, 7, 6]).input('w', 'FP32', [4, 3, 3, 3]).input('skip', 'FP32', [1, 4, 7, 6]);
    for (const name of ['gamma', 'beta', 'mean']) graph.initializer(name, 'FP32', [4], randomTensor([4]).data);
    graph.initializer('variance', 'FP32', [4], Float32Array.from({ length: 4 }, () => 0.5 + Math.random()));
    graph.node('Conv', ['x', 'w'], ['c'], { pads: [1, 1, 1, 1] }).node('BatchNormalization', ['c', 'gamma', 'beta', 'mean', 'variance'], ['n'])
      .node('Add', ['n', 'skip'], ['s']).node('Relu', ['s'], ['y']).output('y', 'FP32', []);
    const runs = [0, 1].map(() => new Map([['x', randomTensor([1, 3, 7, 6])], ['w', randomTensor([4, 3, 3, 3], 0.5)], ['skip', randomTensor([1, 4, 7, 6])]]));
    await checkRuns(gpu, unrankedOutputs(graph, 13), runs);
  });
});

describe('ConvTranspose without kernel_shape', () => {
  it('2-D with bias', () => runtimeWeightsCase('ConvTranspose', [1, 3, 5, 6], [3, 2, 3, 3], {}, 2));
  it('1-D with strides', () => runtimeWeightsCase('ConvTranspose', [2, 3, 7], [3, 4, 3], { strides: [2] }));
  it('3-D with pads', () => runtimeWeightsCase('ConvTranspose', [1, 2, 3, 4, 5], [2, 3, 3, 2, 3], { pads: [1, 0, 1, 0, 1, 1] }, 3));
  it('output_shape', () => runtimeWeightsCase('ConvTranspose', [1, 2, 3, 3], [2, 2, 3, 3], { strides: [3, 2], output_shape: [10, 8] }));
  it('output_padding', () => runtimeWeightsCase('ConvTranspose', [1, 2, 3, 4], [2, 3, 3, 3], { strides: [3, 2], output_padding: [1, 1] }));
  it('auto_pad SAME_UPPER and SAME_LOWER', async () => {
    await runtimeWeightsCase('ConvTranspose', [1, 2, 3, 5], [2, 2, 3, 3], { strides: [2, 2], auto_pad: 'SAME_UPPER' });
    await runtimeWeightsCase('ConvTranspose', [1, 2, 3, 5], [2, 2, 4, 3], { strides: [2, 2], auto_pad: 'SAME_LOWER' });
  });
  it('an empty batch', () => runtimeWeightsCase('ConvTranspose', [0, 2, 3, 3], [2, 2, 2, 2], { strides: [2, 2] }));
  it('dilations and groups', async () => {
    await runtimeWeightsCase('ConvTranspose', [1, 2, 4, 5], [2, 3, 2, 3], { dilations: [2, 2] });
    await runtimeWeightsCase('ConvTranspose', [2, 4, 3, 5], [4, 3, 2, 2], { group: 2, strides: [2, 1] }, 6);
  });
});

describe('weights that do not fit the node', () => {
  async function runError(op: string, xShape: number[], wShape: number[], attributes: Record<string, AttributeValue>): Promise<string> {
    const model = await compileOnnxModel(gpu, unrankedOutputs(runtimeWeightsGraph(op, xShape, wShape, attributes), 13), { isolate: false });
    try {
      const error = await model.run(new Map([['x', randomTensor(xShape)], ['w', randomTensor(wShape)]])).then(() => undefined, (caught: unknown) => caught);
      expect(error).toBeInstanceOf(Error);
      return (error as Error).message;
    } finally {
      model.dispose();
    }
  }
  it('Conv weights whose channels do not match the input are INVALID_ARGUMENT', async () => {
    expect(await runError('Conv', [1, 3, 5, 5], [2, 4, 3, 3], {})).toMatch(/weights \[2,4,3,3\] in 1 groups do not match 3 input channels/);
  });
  it('weights of rank 2 (no spatial dims) are INVALID_ARGUMENT', async () => {
    expect(await runError('ConvTranspose', [1, 3, 5], [3, 2], {})).toMatch(/weights \[3,2\] need 1 to 3 spatial dims/);
  });
  it('a kernel_shape that differs from the run\'s weights is INVALID_ARGUMENT', async () => {
    expect(await runError('Conv', [1, 3, 8, 8], [2, 3, 3, 3], { kernel_shape: [2, 2] })).toMatch(/kernel_shape \[2,2\] differs from the weights \[2,3,3,3\]/);
  });
});
