/**
 * The models the end-to-end benches serve: the Iris example, a heavier MLP and a small
 * ResNet-style convolutional network, each with the input one request carries.
 */
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { GraphBuilder } from '../../services/onnx/index.ts';

export interface BenchModel {
  name: string;
  onnx: Uint8Array;
  inputName: string;
  /** One request's input shape, batch dimension (1) first. */
  shape: number[];
}

/** A dense 256→1024→1024→256 network: ~3 MFLOP a row, enough GPU work for batching to matter. */
function heavyMlp(): BenchModel {
  const widths = [256, 1024, 1024, 256];
  const graph = new GraphBuilder('mlp').input('x', 'FP32', [-1, widths[0]]);
  let current = 'x';
  for (let layer = 0; layer < widths.length - 1; layer++) {
    const [inWidth, outWidth] = [widths[layer], widths[layer + 1]];
    const weights = Float32Array.from({ length: inWidth * outWidth }, () => (Math.random() - 0.5) / Math.sqrt(inWidth));
    graph.initializer(`w${layer}`, 'FP32', [inWidth, outWidth], weights)
      .initializer(`b${layer}`, 'FP32', [outWidth], new Float32Array(outWidth).fill(0.01))
      .node('Gemm', [current, `w${layer}`, `b${layer}`], [`h${layer}`]);
    current = `h${layer}`;
    if (layer < widths.length - 2) {
      graph.node('Relu', [current], [`r${layer}`]);
      current = `r${layer}`;
    }
  }
  graph.node('Identity', [current], ['y']).output('y', 'FP32', [-1, widths.at(-1)!]);
  return { name: 'mlp', onnx: graph.toBytes(), inputName: 'x', shape: [1, widths[0]] };
}

const randomWeights = (count: number, fanIn: number) => Float32Array.from({ length: count }, () => (Math.random() - 0.5) * 2 / Math.sqrt(fanIn));

/**
 * A small ResNet for 3×32×32 images: a 3×3 stem to 16 channels, two residual blocks of two 3×3
 * convolutions each (Conv → BatchNormalization → Relu, the block's input added back before the
 * last Relu), GlobalAveragePool, Flatten and a 16→10 Gemm. About 20 MFLOP a row: convolution
 * work rather than the MLP's matrix products.
 */
function smallResnet(): BenchModel {
  const channels = 16;
  const graph = new GraphBuilder('resnet').input('image', 'FP32', [-1, 3, 32, 32]);
  let convs = 0;
  /** Conv 3×3 (padding 1) → BatchNormalization, from `input` to a new value; returns its name. */
  const convBn = (input: string, inChannels: number): string => {
    const id = convs++;
    graph.initializer(`conv${id}.w`, 'FP32', [channels, inChannels, 3, 3], randomWeights(channels * inChannels * 9, inChannels * 9))
      .initializer(`conv${id}.b`, 'FP32', [channels], new Float32Array(channels))
      .initializer(`bn${id}.scale`, 'FP32', [channels], Float32Array.from({ length: channels }, () => 0.8 + Math.random() * 0.4))
      .initializer(`bn${id}.shift`, 'FP32', [channels], Float32Array.from({ length: channels }, () => (Math.random() - 0.5) * 0.1))
      .initializer(`bn${id}.mean`, 'FP32', [channels], Float32Array.from({ length: channels }, () => (Math.random() - 0.5) * 0.1))
      .initializer(`bn${id}.var`, 'FP32', [channels], Float32Array.from({ length: channels }, () => 0.9 + Math.random() * 0.2))
      .node('Conv', [input, `conv${id}.w`, `conv${id}.b`], [`conv${id}`], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1] })
      .node('BatchNormalization', [`conv${id}`, `bn${id}.scale`, `bn${id}.shift`, `bn${id}.mean`, `bn${id}.var`], [`bn${id}`], { epsilon: { kind: 'float', value: 1e-5 } });
    return `bn${id}`;
  };
  graph.node('Relu', [convBn('image', 3)], ['stem']);
  let current = 'stem';
  for (let block = 0; block < 2; block++) {
    graph.node('Relu', [convBn(current, channels)], [`block${block}.a`]);
    graph.node('Add', [convBn(`block${block}.a`, channels), current], [`block${block}.sum`])
      .node('Relu', [`block${block}.sum`], [`block${block}`]);
    current = `block${block}`;
  }
  graph.node('GlobalAveragePool', [current], ['pooled'])
    .node('Flatten', ['pooled'], ['features'], { axis: 1 })
    .initializer('fc.w', 'FP32', [channels, 10], randomWeights(channels * 10, channels))
    .initializer('fc.b', 'FP32', [10], new Float32Array(10))
    .node('Gemm', ['features', 'fc.w', 'fc.b'], ['logits'])
    .output('logits', 'FP32', [-1, 10]);
  return { name: 'resnet', onnx: graph.toBytes(), inputName: 'image', shape: [1, 3, 32, 32] };
}

export const MODELS: Record<string, () => BenchModel> = {
  iris: () => ({ name: 'iris', onnx: trainIrisModel().onnx, inputName: 'features', shape: [1, 4] }),
  mlp: heavyMlp,
  resnet: smallResnet,
};
