/**
 * An Inception-shaped network (GoogLeNet v1's layout), small: a 7×7 stride-2 stem, MaxPool and
 * LRN, then inception modules of four parallel branches (1×1; 1×1 → 3×3; 1×1 → 5×5; 3×3
 * MaxPool → 1×1) joined by Concat on the channels, a strided MaxPool between them, and an
 * AveragePool (with and without counting the padding) before the Flatten → Gemm head.
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

function inceptionShaped(opset: number): WholeModel {
  const net = new NetBuilder('inception_shaped', opset);
  const convRelu = (input: string, inChannels: number, out: number, kernel: number, stride = 1) =>
    net.relu(net.conv(input, inChannels, out, { kernel, stride }));
  // 32 → 16 (stem) → 8 (pool).
  let x = net.lrn(net.maxPool(convRelu('image', 3, 8, 7, 2), 3, 2, 1));
  let channels = 8;
  const inception = (one: number, three: [number, number], five: [number, number], poolProjection: number) => {
    const branches = [
      convRelu(x, channels, one, 1),
      convRelu(convRelu(x, channels, three[0], 1), three[0], three[1], 3),
      convRelu(convRelu(x, channels, five[0], 1), five[0], five[1], 5),
      convRelu(net.maxPool(x, 3, 1, 1), channels, poolProjection, 1),
    ];
    x = net.op('Concat', branches, { axis: 1 });
    channels = one + three[1] + five[1] + poolProjection;
  };
  inception(4, [4, 6], [2, 3], 3);
  // 8 → 4.
  x = net.maxPool(x, 3, 2, 1);
  inception(5, [4, 7], [2, 4], 4);
  // 4 → 4 with the padding counted, then 4 → 1.
  x = net.averagePool(net.averagePool(x, 3, 1, 1, 1), 4, 1);
  const flat = net.op('Flatten', [net.dropout(x)], { axis: 1 });
  const logits = net.gemm(flat, channels, CLASSES, 1);
  return {
    name: `Inception-shaped, opset ${opset}`,
    bytes: net.finish({ name: 'image', shape: [-1, 3, SIZE, SIZE] }, { name: 'logits', shape: [-1, CLASSES] }, logits),
    input: 'image', output: 'logits',
    inputShape: (batch) => [batch, 3, SIZE, SIZE],
    outputShape: (batch) => [batch, CLASSES],
  };
}

describe.each([9, 17])('Inception-shaped network, 3×32×32 images, opset %i', (opset) => {
  it('matches onnxruntime in fp32 at batch 1 and 3', () => expectFp32MatchesOrt(gpu, inceptionShaped(opset)));
  it('stays within the fp16 tolerance, top-1 agreeing with fp32', () => measureFp16(gpu, inceptionShaped(opset)));
});
