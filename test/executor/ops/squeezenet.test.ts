/**
 * A SqueezeNet-shaped graph as the model zoo's old exports write it (opsets 7 to 9, and 12):
 * Conv + Relu, MaxPool, fire modules (a 1×1 squeeze, then 1×1 and 3×3 expands joined by Concat),
 * Dropout naming its mask output without reading it, AveragePool, GlobalAveragePool, Reshape and
 * Softmax with the pre-13 axis default. Checked against onnxruntime on fresh inputs and weights.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import { checkModelAgainstOrt } from '../numerics/one-node.ts';
import { randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const CLASSES = 5;

/** The graph at `opset`; the Dropout's mask output is named, as the zoo's files name it. */
function squeezeNet(opset: number, batch: number): Uint8Array {
  const graph = new GraphBuilder('squeezenet');
  graph.input('x', 'FP32', [batch, 3, 19, 19]);
  const convRelu = (name: string, input: string, inChannels: number, outChannels: number, kernel: number, attributes: Record<string, number[]> = {}) => {
    const weights = randomTensor([outChannels, inChannels, kernel, kernel], 0.4);
    graph.initializer(`${name}_w`, 'FP32', weights.shape, weights.data);
    graph.initializer(`${name}_b`, 'FP32', [outChannels], randomTensor([outChannels], 0.1).data);
    graph.node('Conv', [input, `${name}_w`, `${name}_b`], [`${name}_conv`], { kernel_shape: [kernel, kernel], ...attributes }, name);
    graph.node('Relu', [`${name}_conv`], [`${name}_relu`], {}, `${name}_relu`);
    return `${name}_relu`;
  };
  const fire = (name: string, input: string, inChannels: number, squeeze: number, expand: number) => {
    const squeezed = convRelu(`${name}_squeeze`, input, inChannels, squeeze, 1);
    const left = convRelu(`${name}_expand1x1`, squeezed, squeeze, expand, 1);
    const right = convRelu(`${name}_expand3x3`, squeezed, squeeze, expand, 3, { pads: [1, 1, 1, 1] });
    graph.node('Concat', [left, right], [`${name}_concat`], { axis: 1 }, `${name}_concat`);
    return `${name}_concat`;
  };
  const conv1 = convRelu('conv1', 'x', 3, 8, 3, { strides: [2, 2] });
  graph.node('MaxPool', [conv1], ['pool1'], { kernel_shape: [3, 3], strides: [2, 2] }, 'pool1');
  const fire3 = fire('fire3', fire('fire2', 'pool1', 8, 3, 5), 10, 4, 7);
  graph.node('MaxPool', [fire3], ['pool3'], { kernel_shape: [2, 2], strides: [1, 1] }, 'pool3');
  graph.node('Dropout', ['pool3'], ['drop9', 'drop9_mask'], opset < 12 ? { ratio: 0.5 } : {}, 'drop9');
  const conv10 = convRelu('conv10', 'drop9', 14, CLASSES, 1);
  graph.node('AveragePool', [conv10], ['pool10'], { kernel_shape: [2, 2] }, 'pool10');
  graph.node('GlobalAveragePool', ['pool10'], ['global'], {}, 'global');
  graph.initializer('flat_shape', 'INT64', [2], BigInt64Array.of(0n, -1n));
  graph.node('Reshape', ['global', 'flat_shape'], ['flat'], {}, 'flatten');
  graph.node('Softmax', ['flat'], ['y'], {}, 'softmax');
  graph.output('y', 'FP32', [batch, CLASSES]);
  return graph.toBytes({ opset });
}

describe('SqueezeNet-shaped graph', () => {
  for (const opset of [7, 8, 9, 12]) {
    for (const batch of [1, 3]) {
      it(`opset ${opset}, batch ${batch}`, () =>
        checkModelAgainstOrt(gpu, squeezeNet(opset, batch), [{ name: 'x', shape: [batch, 3, 19, 19] }], [{ name: 'y', shape: [batch, CLASSES] }]));
    }
  }
});
