/**
 * A SqueezeNet-shaped network (fire modules: a 1×1 squeeze, then 1×1 and 3×3 expands joined by
 * Concat; Dropout; a 1×1 classifier Conv; GlobalAveragePool; Flatten) at opset 17, and its fp16
 * accuracy at 9 and 17. test/executor/ops/squeezenet.test.ts checks the zoo's old-opset form
 * (7 to 12) in fp32.
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

function squeezeNetShaped(opset: number): WholeModel {
  const net = new NetBuilder('squeezenet_shaped', opset);
  const convRelu = (input: string, inChannels: number, out: number, kernel: number, stride = 1) =>
    net.relu(net.conv(input, inChannels, out, { kernel, stride, pad: kernel === 3 && stride === 2 ? 0 : undefined }));
  // 32 → 15 → 7.
  let x = net.maxPool(convRelu('image', 3, 8, 3, 2), 3, 2);
  let channels = 8;
  const fire = (squeeze: number, expand: number) => {
    const squeezed = convRelu(x, channels, squeeze, 1);
    x = net.op('Concat', [convRelu(squeezed, squeeze, expand, 1), convRelu(squeezed, squeeze, expand, 3)], { axis: 1 });
    channels = 2 * expand;
  };
  fire(4, 6);
  fire(4, 6);
  x = net.maxPool(x, 3, 2);
  fire(6, 8);
  x = convRelu(net.dropout(x), channels, CLASSES, 1);
  const logits = net.op('Flatten', [net.op('GlobalAveragePool', [x], {}, 'gap')], { axis: 1 });
  return {
    name: `SqueezeNet-shaped, opset ${opset}`,
    bytes: net.finish({ name: 'image', shape: [-1, 3, SIZE, SIZE] }, { name: 'logits', shape: [-1, CLASSES] }, logits),
    input: 'image', output: 'logits',
    inputShape: (batch) => [batch, 3, SIZE, SIZE],
    outputShape: (batch) => [batch, CLASSES],
  };
}

describe('SqueezeNet-shaped network, 3×32×32 images', () => {
  it('matches onnxruntime in fp32 at batch 1 and 3, opset 17', () => expectFp32MatchesOrt(gpu, squeezeNetShaped(17)));
  it.each([9, 17])('stays within the fp16 tolerance at opset %i, top-1 agreeing with fp32', async (opset) => { await measureFp16(gpu, squeezeNetShaped(opset)); });
});
