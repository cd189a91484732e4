/**
 * The rest of the model zoo's classic architectures, small, at the opsets the zoo exports them
 * with (8 / 9) and at 17: ShuffleNet (grouped 1×1 convs, channel shuffle as Reshape →
 * Transpose → Reshape, stride-2 units joined by Concat with an AveragePool shortcut, Sum of the
 * residual), DenseNet (BatchNormalization → Relu → Conv blocks whose outputs Concat onto every
 * earlier feature map, transitions with AveragePool), VGG (stacked 3×3 convs, weights made by
 * ConstantOfShape and Mul as some exporters fold them), ZFNet (a 7×7 stride-2 stem and LRN) and
 * GoogLeNet (Inception v1: four-branch modules with a pooled 1×1 branch, LRN in the stem).
 * Each against onnxruntime's CPU provider in fp32 at batch 1 and 3, and in fp16.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { NetBuilder } from './net-builder.ts';
import { expectFp32MatchesOrt, measureFp16, type WholeModel } from './whole-model.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const CLASSES = 10;

function model(net: NetBuilder, name: string, size: number, logits: string): WholeModel {
  return {
    name: `${name}, opset ${net.opset}`,
    bytes: net.finish({ name: 'image', shape: [-1, 3, size, size] }, { name: 'logits', shape: [-1, CLASSES] }, logits),
    input: 'image', output: 'logits',
    inputShape: (batch) => [batch, 3, size, size],
    outputShape: (batch) => [batch, CLASSES],
  };
}

function shuffleNetShaped(opset: number): WholeModel {
  const net = new NetBuilder('shufflenet_shaped', opset);
  const groups = 3;
  const SIZE = 33;
  const shuffle = (input: string, channels: number, height: number) => {
    const split = net.op('Reshape', [input, net.int64s('shape', [0, groups, channels / groups, height, height])]);
    const swapped = net.op('Transpose', [split], { perm: [0, 2, 1, 3, 4] });
    return net.op('Reshape', [swapped, net.int64s('shape', [0, channels, height, height])]);
  };
  // 33 → 17 (3×3 stride 2, pad 1) → 9 (pool, pad 1).
  let x = net.maxPool(net.relu(net.conv('image', 3, 12, { kernel: 3, stride: 2, pad: 1, batchNorm: true })), 3, 2, 1);
  let channels = 12;
  let height = 9;
  const unit = (stride: number, out: number) => {
    const bottleneck = out / 4;
    let branch = net.relu(net.conv(x, channels, bottleneck, { kernel: 1, group: groups, batchNorm: true }));
    branch = shuffle(branch, bottleneck, height);
    branch = net.conv(branch, bottleneck, bottleneck, { kernel: 3, stride, pad: 1, group: bottleneck, batchNorm: true });
    const outHeight = stride === 2 ? Math.floor((height + 2 - 3) / 2) + 1 : height;
    if (stride === 2) {
      branch = net.conv(branch, bottleneck, out - channels, { kernel: 1, group: groups, batchNorm: true });
      const shortcut = net.averagePool(x, 3, 2, 1);
      x = net.relu(net.op('Concat', [shortcut, branch], { axis: 1 }));
    } else {
      branch = net.conv(branch, bottleneck, out, { kernel: 1, group: groups, batchNorm: true });
      x = net.relu(net.op('Sum', [x, branch]));
    }
    channels = out;
    height = outHeight;
  };
  unit(2, 24); // 9 → 5
  unit(1, 24);
  unit(2, 48); // 5 → 3
  unit(1, 48);
  return model(net, 'ShuffleNet-shaped', SIZE, net.classifierHead(x, channels, CLASSES));
}

function denseNetShaped(opset: number): WholeModel {
  const net = new NetBuilder('densenet_shaped', opset);
  const SIZE = 30;
  const growth = 6;
  // 30 → 15 (7×7 stride 2, pad 3) → 8 (pool 3, stride 2, pad 1).
  let x = net.maxPool(net.relu(net.batchNorm(net.conv('image', 3, 12, { kernel: 7, stride: 2, pad: 3 }), 12)), 3, 2, 1);
  let channels = 12;
  const denseBlock = (layers: number) => {
    for (let layer = 0; layer < layers; layer++) {
      const bottleneck = net.conv(net.relu(net.batchNorm(x, channels)), channels, 4 * growth, { kernel: 1 });
      const features = net.conv(net.relu(net.batchNorm(bottleneck, 4 * growth)), 4 * growth, growth, { kernel: 3 });
      x = net.op('Concat', [x, features], { axis: 1 });
      channels += growth;
    }
  };
  const transition = () => {
    const out = Math.floor(channels / 2);
    x = net.averagePool(net.conv(net.relu(net.batchNorm(x, channels)), channels, out, { kernel: 1 }), 2, 2);
    channels = out;
  };
  denseBlock(3);
  transition(); // 8 → 4
  denseBlock(3);
  x = net.relu(net.batchNorm(x, channels));
  return model(net, 'DenseNet-shaped', SIZE, net.classifierHead(x, channels, CLASSES));
}

function vggShaped(opset: number): WholeModel {
  const net = new NetBuilder('vgg_shaped', opset);
  const SIZE = 32;
  /** A 3×3 conv whose weight is ConstantOfShape(shape) × a random per-output-channel scale: a constant subgraph. */
  const foldedConv = (input: string, inChannels: number, out: number) => {
    const shape = net.int64s('w_shape', [out, inChannels, 3, 3]);
    const ones = net.op('ConstantOfShape', [shape], {}, 'w_ones');
    const scale = net.weight('w_scale', [out, 1, 1, 1], Float32Array.from({ length: out }, () => (Math.random() * 2 - 1) * Math.sqrt(6 / (inChannels * 9)) / 3));
    const weight = net.op('Mul', [ones, scale], {}, 'w_folded');
    const random = net.conv(input, inChannels, out, { kernel: 3 });
    const bias = net.weight('b', [out], Float32Array.from({ length: out }, () => Math.random() * 0.1));
    return net.relu(net.op('Add', [random, net.op('Conv', [input, weight, bias], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })]));
  };
  let x = 'image';
  let channels = 3;
  for (const [out, repeats] of [[8, 2], [12, 2], [16, 3]]) {
    for (let repeat = 0; repeat < repeats; repeat++) {
      x = foldedConv(x, channels, out);
      channels = out;
    }
    x = net.maxPool(x, 2, 2);
  }
  // 32 → 16 → 8 → 4.
  let flat = net.op('Flatten', [x], { axis: 1 });
  flat = net.relu(net.gemm(net.dropout(flat), channels * 16, 32));
  flat = net.relu(net.gemm(net.dropout(flat), 32, 24));
  return model(net, 'VGG-shaped', SIZE, net.gemm(flat, 24, CLASSES, 1));
}

function zfNetShaped(opset: number): WholeModel {
  const net = new NetBuilder('zfnet_shaped', opset);
  const SIZE = 45;
  // 45 → 20 (7×7 stride 2, pad 1) → 9 (pool 3, stride 2) → 4 (5×5 stride 2, pad 0) → 4 → 1 (pool 3, 2).
  let x = net.maxPool(net.lrn(net.relu(net.conv('image', 3, 8, { kernel: 7, stride: 2, pad: 1 }))), 3, 2);
  x = net.maxPool(net.lrn(net.relu(net.conv(x, 8, 12, { kernel: 5, stride: 2, pad: 1 }))), 3, 2);
  x = net.relu(net.conv(x, 12, 16, { kernel: 3 }));
  let flat = net.op('Flatten', [x], { axis: 1 });
  flat = net.relu(net.gemm(net.dropout(flat), 16, 24));
  return model(net, 'ZFNet-shaped', SIZE, net.gemm(flat, 24, CLASSES, 1));
}

function googLeNetShaped(opset: number): WholeModel {
  const net = new NetBuilder('googlenet_shaped', opset);
  const SIZE = 32;
  // 32 → 16 (7×7 stride 2) → 8 (pool 3, stride 2, pad 1), LRN, 1×1 and 3×3 convs, LRN.
  let x = net.lrn(net.maxPool(net.relu(net.conv('image', 3, 8, { kernel: 7, stride: 2 })), 3, 2, 1));
  x = net.lrn(net.relu(net.conv(net.relu(net.conv(x, 8, 8, { kernel: 1 })), 8, 12, { kernel: 3 })));
  let channels = 12;
  const inception = (one: number, threeReduce: number, three: number, fiveReduce: number, five: number, pooled: number) => {
    const branch1 = net.relu(net.conv(x, channels, one, { kernel: 1 }));
    const branch3 = net.relu(net.conv(net.relu(net.conv(x, channels, threeReduce, { kernel: 1 })), threeReduce, three, { kernel: 3 }));
    const branch5 = net.relu(net.conv(net.relu(net.conv(x, channels, fiveReduce, { kernel: 1 })), fiveReduce, five, { kernel: 5 }));
    const pool = net.op('MaxPool', [x], { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1] });
    const branch4 = net.relu(net.conv(pool, channels, pooled, { kernel: 1 }));
    x = net.op('Concat', [branch1, branch3, branch5, branch4], { axis: 1 });
    channels = one + three + five + pooled;
  };
  inception(4, 4, 6, 2, 3, 3);
  inception(6, 4, 8, 2, 4, 4);
  x = net.maxPool(x, 3, 2, 1); // 8 → 4
  inception(6, 6, 8, 2, 4, 4);
  const pooled = net.averagePool(x, 4, 1);
  const flat = net.op('Flatten', [net.dropout(pooled)], { axis: 1 });
  return model(net, 'GoogLeNet-shaped', SIZE, net.gemm(flat, channels, CLASSES, 1));
}

// ConstantOfShape is an operator from opset 9.
const NETWORKS: Array<[string, (opset: number) => WholeModel, number[]]> = [
  ['ShuffleNet', shuffleNetShaped, [8, 9, 17]], ['DenseNet', denseNetShaped, [8, 9, 17]], ['VGG', vggShaped, [9, 17]],
  ['ZFNet', zfNetShaped, [8, 9, 17]], ['GoogLeNet', googLeNetShaped, [8, 9, 17]],
];

describe.each(NETWORKS)('%s-shaped network', (_, build, opsets) => {
  it.each(opsets)('matches onnxruntime in fp32 at batch 1 and 3, opset %i', (opset) => expectFp32MatchesOrt(gpu, build(opset)));
  it('stays within the fp16 tolerance, top-1 agreeing with fp32 (opset 17)', () => measureFp16(gpu, build(17)));
});
