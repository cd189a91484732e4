/**
 * A small ResNet-style CNN built in code with random weights, for numerics tests and benchmarks:
 *
 *   image [N, 3, 32, 32]
 *   stem:    Conv 3×3 stride 2 (pad 1) → BatchNormalization → Relu → MaxPool 3×3 stride 2 (pad 1)
 *   block 1: Conv 3×3 → BN → Relu → Conv 3×3 → BN, + the block's input → Relu
 *   block 2: Conv 3×3 stride 2 → BN → Relu → Conv 3×3 → BN, + Conv 1×1 stride 2 → BN of the
 *            block's input (the projection shortcut) → Relu
 *   head:    GlobalAveragePool → Flatten → Gemm (transB) → logits [N, classes]
 *
 * The batch dim is symbolic, so one model serves every batch size.
 */
import { float, GraphBuilder } from '../../onnx/builder.ts';
import { freshSeed, WeightSource, type ExampleModel } from './common.ts';

export interface ResNetStyleOptions {
  /** Weights are a function of the seed; default: a fresh random seed. */
  seed?: number;
  /** Square input size (default 32). */
  imageSize?: number;
  /** Channels of the stem and block 1 (default 16); block 2 has 1.5× as many. */
  channels?: number;
  /** Classifier outputs (default 10). */
  classes?: number;
  /** ONNX opset of the model (default 17; every operator used exists since 13, and the runtime takes up to 21). */
  opset?: number;
}

/** Spatial size after a window of `kernel` with `stride` and `pad` on each side. */
const windowOut = (size: number, kernel: number, stride: number, pad: number) => Math.floor((size + 2 * pad - kernel) / stride) + 1;

export function buildResNetStyle(options: ResNetStyleOptions = {}): ExampleModel {
  const seed = options.seed ?? freshSeed();
  const size = options.imageSize ?? 32;
  const width = options.channels ?? 16;
  const wide = Math.round(width * 1.5);
  const classes = options.classes ?? 10;
  const weights = new WeightSource(seed);
  const graph = new GraphBuilder('resnet_style').input('image', 'FP32', [-1, 3, size, size]);
  let flops = 0;

  /** Conv (with a bias) → BatchNormalization with random statistics; returns the BN output. */
  const convBn = (name: string, input: string, inChannels: number, outChannels: number, kernel: number, stride: number, inSize: number) => {
    const pad = (kernel - 1) / 2;
    const fanIn = inChannels * kernel * kernel;
    const outSize = windowOut(inSize, kernel, stride, pad);
    flops += 2 * outChannels * outSize * outSize * fanIn;
    graph
      .initializer(`${name}.weight`, 'FP32', [outChannels, inChannels, kernel, kernel], weights.layer(outChannels * fanIn, fanIn))
      .initializer(`${name}.bias`, 'FP32', [outChannels], weights.uniform(outChannels, 0.1))
      .initializer(`${name}.bn.scale`, 'FP32', [outChannels], weights.between(outChannels, 0.7, 1.3))
      .initializer(`${name}.bn.shift`, 'FP32', [outChannels], weights.uniform(outChannels, 0.2))
      .initializer(`${name}.bn.mean`, 'FP32', [outChannels], weights.uniform(outChannels, 0.2))
      .initializer(`${name}.bn.var`, 'FP32', [outChannels], weights.between(outChannels, 0.5, 1.5))
      .node('Conv', [input, `${name}.weight`, `${name}.bias`], [`${name}.conv`],
        { kernel_shape: [kernel, kernel], pads: [pad, pad, pad, pad], strides: [stride, stride] }, `${name}.conv`)
      .node('BatchNormalization', [`${name}.conv`, ...['scale', 'shift', 'mean', 'var'].map((part) => `${name}.bn.${part}`)], [`${name}.bn`],
        { epsilon: float(1e-5) }, `${name}.bn`);
    return { output: `${name}.bn`, size: outSize };
  };

  // Stem: 32 → 16 (conv stride 2) → 8 (max pool stride 2).
  const stem = convBn('stem', 'image', 3, width, 3, 2, size);
  graph.node('Relu', [stem.output], ['stem.relu'], {}, 'stem.relu')
    .node('MaxPool', ['stem.relu'], ['stem.pool'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, 'stem.pool');
  const pooled = windowOut(stem.size, 3, 2, 1);

  // Block 1: identity shortcut.
  const a1 = convBn('block1.a', 'stem.pool', width, width, 3, 1, pooled);
  graph.node('Relu', [a1.output], ['block1.a.relu'], {}, 'block1.a.relu');
  const b1 = convBn('block1.b', 'block1.a.relu', width, width, 3, 1, a1.size);
  graph.node('Add', [b1.output, 'stem.pool'], ['block1.sum'], {}, 'block1.add')
    .node('Relu', ['block1.sum'], ['block1.out'], {}, 'block1.relu');

  // Block 2: halves the size and widens, with a strided 1×1 projection on the shortcut.
  const a2 = convBn('block2.a', 'block1.out', width, wide, 3, 2, b1.size);
  graph.node('Relu', [a2.output], ['block2.a.relu'], {}, 'block2.a.relu');
  const b2 = convBn('block2.b', 'block2.a.relu', wide, wide, 3, 1, a2.size);
  const shortcut = convBn('block2.shortcut', 'block1.out', width, wide, 1, 2, b1.size);
  graph.node('Add', [b2.output, shortcut.output], ['block2.sum'], {}, 'block2.add')
    .node('Relu', ['block2.sum'], ['block2.out'], {}, 'block2.relu');

  // Head.
  flops += 2 * wide * classes;
  graph.node('GlobalAveragePool', ['block2.out'], ['head.pool'], {}, 'head.pool')
    .node('Flatten', ['head.pool'], ['head.features'], { axis: 1 }, 'head.flatten')
    .initializer('head.weight', 'FP32', [classes, wide], weights.layer(classes * wide, wide, 1))
    .initializer('head.bias', 'FP32', [classes], weights.uniform(classes, 0.1))
    .node('Gemm', ['head.features', 'head.weight', 'head.bias'], ['logits'], { transB: 1 }, 'head.gemm')
    .output('logits', 'FP32', [-1, classes]);

  return {
    name: 'resnet_style',
    onnx: graph.toBytes({ opset: options.opset ?? 17 }),
    seed,
    input: { name: 'image', shape: [-1, 3, size, size] },
    output: { name: 'logits', shape: [-1, classes] },
    inputShape: (batch) => [batch, 3, size, size],
    flopsPerSample: flops,
  };
}
