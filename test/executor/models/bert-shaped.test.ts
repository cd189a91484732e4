/**
 * A BERT-style encoder at opset 21, small, as exporters write it: word, position and token-type
 * embeddings by Gather, LayerNormalization, an attention mask from the request turned into an
 * additive bias (Cast, Sub, Mul, Unsqueeze), per layer q/k/v MatMul + Add, Reshape/Transpose to
 * heads, scaled scores, Softmax, the context merged back, residual Adds each followed by
 * LayerNormalization, an MLP whose activation is the Gelu operator in layer 0 and the Erf form
 * x · 0.5 · (1 + erf(x / √2)) in layer 1; a pooler (Gather of the first token, Gemm, Tanh) and
 * a classifier Gemm.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { randomIntegers } from '../numerics/ort-reference.ts';
import { NetBuilder } from './net-builder.ts';
import { expectFp32MatchesOrt, measureFp16, type WholeModel } from './whole-model.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const VOCAB = 50;
const SEQUENCE = 11;
const HIDDEN = 32;
const HEADS = 4;
const HEAD_SIZE = HIDDEN / HEADS;
const CLASSES = 3;

const uniform = (count: number, scale: number) => Float32Array.from({ length: count }, () => (Math.random() * 2 - 1) * scale);

function bertShaped(opset: number): WholeModel {
  const net = new NetBuilder('bert_shaped', opset);
  const { graph } = net;
  const scalar = (value: number) => net.weight('c', [], Float32Array.of(value));
  const matrix = (rows: number, columns: number, gain = 1) => net.weight('w', [rows, columns], uniform(rows * columns, Math.sqrt((3 * gain) / rows)));
  const bias = (size: number) => net.weight('b', [size], uniform(size, 0.1));
  const linear = (input: string, rows: number, columns: number) => net.op('Add', [net.op('MatMul', [input, matrix(rows, columns)]), bias(columns)]);
  const layerNorm = (input: string) => net.op('LayerNormalization', [input, net.weight('ln_scale', [HIDDEN], Float32Array.from({ length: HIDDEN }, () => 0.8 + 0.4 * Math.random())), bias(HIDDEN)],
    { axis: -1, epsilon: 1e-12 }, 'ln');

  // Embeddings: word + position (Gather of 0..S-1) + token type 0, then LayerNorm.
  const words = net.op('Gather', [net.weight('word_emb', [VOCAB, HIDDEN], uniform(VOCAB * HIDDEN, 1)), 'input_ids'], { axis: 0 });
  const positionIds = net.int64s('position_ids', Array.from({ length: SEQUENCE }, (_, index) => index));
  const positions = net.op('Gather', [net.weight('pos_emb', [SEQUENCE, HIDDEN], uniform(SEQUENCE * HIDDEN, 0.5)), positionIds], { axis: 0 });
  const tokenType = net.op('Gather', [net.weight('type_emb', [2, HIDDEN], uniform(2 * HIDDEN, 0.5)), net.int64s('type_id', [0])], { axis: 0 });
  let x = layerNorm(net.op('Add', [net.op('Add', [words, positions]), tokenType]));

  // Mask [N, S] of 1 (attend) and 0 (padding) → additive bias [N, 1, 1, S] of 0 and -10000.
  const maskFloat = net.op('Cast', ['attention_mask'], { to: 1 });
  const maskBias = net.op('Mul', [net.op('Sub', [scalar(1), maskFloat]), scalar(-10000)]);
  const maskBias4d = net.op('Unsqueeze', [maskBias, net.int64s('mask_axes', [1, 2])]);

  const headsShape = net.int64s('heads_shape', [0, 0, HEADS, HEAD_SIZE]);
  const mergedShape = net.int64s('merged_shape', [0, 0, HIDDEN]);
  for (const gelu of ['operator', 'erf'] as const) {
    const heads = (input: string, permutation: number[]) => net.op('Transpose', [net.op('Reshape', [input, headsShape])], { perm: permutation });
    const q = heads(linear(x, HIDDEN, HIDDEN), [0, 2, 1, 3]);
    const k = heads(linear(x, HIDDEN, HIDDEN), [0, 2, 3, 1]);
    const v = heads(linear(x, HIDDEN, HIDDEN), [0, 2, 1, 3]);
    const scores = net.op('Add', [net.op('Div', [net.op('MatMul', [q, k]), scalar(Math.sqrt(HEAD_SIZE))]), maskBias4d]);
    const probabilities = net.op('Softmax', [scores], { axis: -1 });
    const context = net.op('Reshape', [net.op('Transpose', [net.op('MatMul', [probabilities, v])], { perm: [0, 2, 1, 3] }), mergedShape]);
    x = layerNorm(net.op('Add', [linear(context, HIDDEN, HIDDEN), x]));
    const up = linear(x, HIDDEN, 2 * HIDDEN);
    const activated = gelu === 'operator' ? net.op('Gelu', [up])
      : net.op('Mul', [net.op('Mul', [up, scalar(0.5)]), net.op('Add', [net.op('Erf', [net.op('Div', [up, scalar(Math.SQRT2)])]), scalar(1)])]);
    x = layerNorm(net.op('Add', [linear(activated, 2 * HIDDEN, HIDDEN), x]));
  }
  graph.input('input_ids', 'INT64', [-1, SEQUENCE]).input('attention_mask', 'INT64', [-1, SEQUENCE]);
  // Pooler on the first token, then the classifier.
  const first = net.op('Gather', [x, net.int64s('first', [0])], { axis: 1 });
  const flat = net.op('Flatten', [first], { axis: 1 });
  const pooled = net.op('Tanh', [net.gemm(flat, HIDDEN, HIDDEN, 1)]);
  const logits = net.gemm(pooled, HIDDEN, CLASSES, 1);
  graph.node('Identity', [logits], ['logits'], {}, 'output').output('logits', 'FP32', [-1, CLASSES]);
  return {
    name: `BERT-style encoder, opset ${opset}`,
    bytes: graph.toBytes({ opset }),
    input: 'input_ids', output: 'logits',
    inputShape: (batch) => [batch, SEQUENCE],
    outputShape: (batch) => [batch, CLASSES],
    inputs: (batch) => new Map<string, HostTensor>([
      ['input_ids', randomIntegers([batch, SEQUENCE], 0, VOCAB - 1)],
      // Each row attends to a random-length prefix (at least one token), padding after it.
      ['attention_mask', maskOfLengths(Array.from({ length: batch }, () => 1 + Math.floor(Math.random() * SEQUENCE)))],
    ]),
  };
}

function maskOfLengths(lengths: number[]): HostTensor {
  const data = new BigInt64Array(lengths.length * SEQUENCE);
  lengths.forEach((length, row) => data.fill(1n, row * SEQUENCE, row * SEQUENCE + length));
  return { datatype: 'INT64', shape: [lengths.length, SEQUENCE], data };
}

describe.each([21])('BERT-style encoder, 2 layers, sequence 11, hidden 32, 4 heads, opset %i', (opset) => {
  it('matches onnxruntime in fp32 at batch 1 and 3', () => expectFp32MatchesOrt(gpu, bertShaped(opset)));
  it('stays within the fp16 tolerance, top-1 agreeing with fp32', () => measureFp16(gpu, bertShaped(opset)));
});
