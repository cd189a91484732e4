/**
 * A MobileNet-shaped network, small: a strided 3×3 stem, depthwise separable blocks (a 3×3
 * depthwise Conv, group = channels, then a 1×1 pointwise Conv, each with BatchNormalization),
 * Relu6 as Clip (bounds as attributes at opset 9, as inputs at 17) in the V2-style blocks and
 * HardSwish (at opset 9 unfolded as x · HardSigmoid(x), as exporters write it) in the V3-style
 * ones, an inverted-residual Add, and a GlobalAveragePool → Flatten → Gemm head.
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

function mobileNetShaped(opset: number): WholeModel {
  const net = new NetBuilder('mobilenet_shaped', opset);
  let x = net.relu6(net.conv('image', 3, 8, { kernel: 3, stride: 2, batchNorm: true }));
  let channels = 8;
  const activate = (input: string, hardSwish: boolean) => (hardSwish ? net.hardSwish(input) : net.relu6(input));
  /** Depthwise 3×3 then pointwise 1×1; adds the block's input back when the shape allows. */
  const separable = (out: number, stride: number, hardSwish: boolean) => {
    const depthwise = activate(net.conv(x, channels, channels, { kernel: 3, stride, group: channels, batchNorm: true }), hardSwish);
    const pointwise = net.conv(depthwise, channels, out, { kernel: 1, batchNorm: true });
    x = stride === 1 && out === channels ? net.op('Add', [pointwise, x]) : activate(pointwise, hardSwish);
    channels = out;
  };
  separable(12, 1, false);
  separable(12, 1, false);
  separable(16, 2, true);
  separable(16, 1, true);
  const logits = net.classifierHead(net.hardSwish(x), channels, CLASSES);
  return {
    name: `MobileNet-shaped, opset ${opset}`,
    bytes: net.finish({ name: 'image', shape: [-1, 3, SIZE, SIZE] }, { name: 'logits', shape: [-1, CLASSES] }, logits),
    input: 'image', output: 'logits',
    inputShape: (batch) => [batch, 3, SIZE, SIZE],
    outputShape: (batch) => [batch, CLASSES],
  };
}

describe.each([9, 17])('MobileNet-shaped network, 3×32×32 images, opset %i', (opset) => {
  it('matches onnxruntime in fp32 at batch 1 and 3', () => expectFp32MatchesOrt(gpu, mobileNetShaped(opset)));
  it('stays within the fp16 tolerance, top-1 agreeing with fp32', () => measureFp16(gpu, mobileNetShaped(opset)));
});
