/**
 * An int8 CNN in the QOperator format onnxruntime's static quantization writes (the int8 model
 * zoo's ResNet and MobileNet): QuantizeLinear, QLinearConv stem, a residual block of two
 * QLinearConvs joined by com.microsoft QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool,
 * QLinearMatMul classifier, DequantizeLinear. Compared with onnxruntime's CPU provider end to end
 * on fresh inputs: a rounding step apart anywhere shows as a difference of a whole scale.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import { checkModelAgainstOrt } from '../numerics/one-node.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const MS = 'com.microsoft';

/** The model: x [1, 3, 16, 16] -> logits [1, 10]. */
function int8Cnn(): Uint8Array {
  const graph = new GraphBuilder('int8_cnn').input('x', 'FP32', [1, 3, 16, 16]);
  const scalar = (name: string, datatype: Datatype, value: number) => {
    const data = datatype === 'FP32' ? Float32Array.of(value) : datatype === 'INT8' ? Int8Array.of(value) : datatype === 'INT32' ? Int32Array.of(value) : Uint8Array.of(value);
    graph.initializer(name, datatype, [], data);
    return name;
  };
  const int8Weights = (name: string, shape: number[]) => {
    const count = shape.reduce((a, b) => a * b, 1);
    graph.initializer(name, 'INT8', shape, Int8Array.from({ length: count }, () => Math.round(Math.random() * 200 - 100)));
    return name;
  };
  const int32Bias = (name: string, count: number) => {
    graph.initializer(name, 'INT32', [count], Int32Array.from({ length: count }, () => Math.round(Math.random() * 2000 - 1000)));
    return name;
  };
  /** A quantized activation: its scale and uint8 zero point. */
  const activation = (name: string, scale: number, zero: number) => [scalar(`${name}_scale`, 'FP32', scale), scalar(`${name}_zero`, 'UINT8', zero)];
  const weightScale = scalar('w_scale', 'FP32', 0.004);
  const weightZero = scalar('w_zero', 'INT8', 0);
  const conv = (name: string, input: string, inQ: string[], outQ: string[], inChannels: number, outChannels: number, kernel: number) => {
    graph.node('QLinearConv', [input, ...inQ, int8Weights(`${name}_w`, [outChannels, inChannels, kernel, kernel]), weightScale, weightZero, ...outQ, int32Bias(`${name}_b`, outChannels)],
      [name], { pads: Array(4).fill((kernel - 1) / 2) }, name);
    return name;
  };
  const input = activation('x', 0.02, 128);
  const [stemQ, aQ, bQ, sumQ, poolQ, gapQ, logitsQ] = [
    activation('stem', 0.05, 0), activation('a', 0.04, 0), activation('b', 0.03, 10), activation('sum', 0.06, 5), activation('pool', 0.05, 3),
    activation('gap', 0.02, 1), activation('logits', 0.1, 128),
  ];
  graph.node('QuantizeLinear', ['x', ...input], ['qx'], {}, 'quantize');
  conv('stem', 'qx', input, stemQ, 3, 8, 3);
  conv('block_a', 'stem', stemQ, aQ, 8, 8, 3);
  conv('block_b', 'block_a', aQ, bQ, 8, 8, 1);
  graph.node('QLinearAdd', ['block_b', ...bQ, 'stem', ...stemQ, ...sumQ], ['residual'], {}, 'residual_add', MS);
  graph.node('QLinearAveragePool', ['residual', ...sumQ, ...poolQ], ['pooled'], { kernel_shape: [2, 2], strides: [2, 2] }, 'average_pool', MS);
  graph.node('QLinearGlobalAveragePool', ['pooled', ...poolQ, ...gapQ], ['gap'], {}, 'global_pool', MS);
  graph.initializer('flat_shape', 'INT64', [2], BigInt64Array.of(1n, 8n)).node('Reshape', ['gap', 'flat_shape'], ['flat'], {}, 'flatten');
  graph.node('QLinearMatMul', ['flat', ...gapQ, int8Weights('fc_w', [8, 10]), weightScale, weightZero, ...logitsQ], ['qlogits'], {}, 'classifier');
  graph.node('DequantizeLinear', ['qlogits', ...logitsQ], ['logits'], {}, 'dequantize').output('logits', 'FP32', [1, 10]);
  return graph.toBytes({ opset: 13 });
}

describe('int8 CNN in the QOperator format', () => {
  it('QLinearConv, QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool and QLinearMatMul match onnxruntime end to end', () =>
    checkModelAgainstOrt(gpu, int8Cnn(), [{ name: 'x', shape: [1, 3, 16, 16] }], [{ name: 'logits', shape: [1, 10] }]));
});
