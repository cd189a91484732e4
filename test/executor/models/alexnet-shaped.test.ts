/**
 * An AlexNet-shaped network, small: an 11×11 stride-4 Conv with padding 2, LRN after the first
 * two convolutions, 3×3 stride-2 MaxPools, 5×5 and 3×3 convolutions, then Flatten → Dropout →
 * Gemm → Relu → Dropout → Gemm → Relu → Gemm (Dropout an identity at inference; its ratio an
 * attribute at opset 9, an input at 17). On 3×63×63 images so the large strides land exactly.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { NetBuilder } from './net-builder.ts';
import { expectFp32MatchesOrt, measureFp16, type WholeModel } from './whole-model.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const CLASSES = 10;
const SIZE = 63;

function alexNetShaped(opset: number): WholeModel {
  const net = new NetBuilder('alexnet_shaped', opset);
  // 63 → 15 (11×11 stride 4, pad 2) → 7 (pool).
  let x = net.maxPool(net.lrn(net.relu(net.conv('image', 3, 8, { kernel: 11, stride: 4, pad: 2 }))), 3, 2);
  // 7 → 7 → 3 (pool).
  x = net.maxPool(net.lrn(net.relu(net.conv(x, 8, 12, { kernel: 5 }))), 3, 2);
  x = net.relu(net.conv(x, 12, 16, { kernel: 3 }));
  x = net.relu(net.conv(x, 16, 12, { kernel: 3 }));
  const features = 12 * 3 * 3;
  let flat = net.op('Flatten', [x], { axis: 1 });
  flat = net.relu(net.gemm(net.dropout(flat), features, 40));
  flat = net.relu(net.gemm(net.dropout(flat), 40, 24));
  const logits = net.gemm(flat, 24, CLASSES, 1);
  return {
    name: `AlexNet-shaped, opset ${opset}`,
    bytes: net.finish({ name: 'image', shape: [-1, 3, SIZE, SIZE] }, { name: 'logits', shape: [-1, CLASSES] }, logits),
    input: 'image', output: 'logits',
    inputShape: (batch) => [batch, 3, SIZE, SIZE],
    outputShape: (batch) => [batch, CLASSES],
  };
}

describe.each([9, 17])('AlexNet-shaped network, 3×63×63 images, opset %i', (opset) => {
  it('matches onnxruntime in fp32 at batch 1 and 3', () => expectFp32MatchesOrt(gpu, alexNetShaped(opset)));
  it('stays within the fp16 tolerance, top-1 agreeing with fp32', () => measureFp16(gpu, alexNetShaped(opset)));
});
