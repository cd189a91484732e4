/**
 * A ResNet-50-shaped network, small: a 7×7 stride-2 stem with BatchNormalization, Relu and
 * MaxPool, then bottleneck blocks (1×1 reduce, 3×3, 1×1 expand, each with BatchNormalization)
 * whose residuals join by Add in some blocks and by a variadic Sum in others (older exporters
 * write Sum), projection shortcuts where the shape changes, and a GlobalAveragePool → Flatten →
 * Gemm head. At opsets 9 and 17, against onnxruntime in fp32 and measured in fp16.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { NetBuilder } from './net-builder.ts';
import { expectFp32MatchesOrt, measureFp16, type WholeModel } from './whole-model.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const CLASSES = 10;
const SIZE = 32;

function resnet50Shaped(opset: number): WholeModel {
  const net = new NetBuilder('resnet50_shaped', opset);
  let x = net.maxPool(net.relu(net.conv('image', 3, 8, { kernel: 7, stride: 2, batchNorm: true })), 3, 2, 1);
  let channels = 8;
  /** One bottleneck; `joinBySum` writes the residual as Sum(branch, shortcut) instead of Add. */
  const bottleneck = (width: number, out: number, stride: number, joinBySum: boolean) => {
    const reduced = net.relu(net.conv(x, channels, width, { kernel: 1, batchNorm: true }));
    const spatial = net.relu(net.conv(reduced, width, width, { kernel: 3, stride, batchNorm: true }));
    const expanded = net.conv(spatial, width, out, { kernel: 1, batchNorm: true });
    const shortcut = stride !== 1 || channels !== out ? net.conv(x, channels, out, { kernel: 1, stride, batchNorm: true }) : x;
    x = net.relu(net.op(joinBySum ? 'Sum' : 'Add', [expanded, shortcut]));
    channels = out;
  };
  bottleneck(4, 16, 1, false);
  bottleneck(4, 16, 1, true);
  bottleneck(8, 32, 2, true);
  bottleneck(8, 32, 1, false);
  const logits = net.classifierHead(x, channels, CLASSES);
  return {
    name: `ResNet-50-shaped, opset ${opset}`,
    bytes: net.finish({ name: 'image', shape: [-1, 3, SIZE, SIZE] }, { name: 'logits', shape: [-1, CLASSES] }, logits),
    input: 'image', output: 'logits',
    inputShape: (batch) => [batch, 3, SIZE, SIZE],
    outputShape: (batch) => [batch, CLASSES],
  };
}

describe.each([9, 17])('ResNet-50-shaped network, 3×32×32 images, opset %i', (opset) => {
  it('matches onnxruntime in fp32 at batch 1 and 3', () => expectFp32MatchesOrt(gpu, resnet50Shaped(opset)));
  it('stays within the fp16 tolerance, top-1 agreeing with fp32', () => measureFp16(gpu, resnet50Shaped(opset)));
});
