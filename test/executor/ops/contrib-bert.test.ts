/**
 * A BERT-style encoder as onnxruntime's transformer optimizer leaves it: per layer a fused
 * Attention (packed Q/K/V weights, the int64 attention mask cast to int32), the output
 * projection's bias folded into SkipLayerNormalization with the residual, and a feed-forward
 * block whose activation is BiasGelu in one layer and FastGelu in the next. Compared with
 * onnxruntime's CPU provider end to end on fresh inputs and masks, at opsets 11 and 21.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { float, GraphBuilder } from '../../../services/onnx/builder.ts';
import { checkModelAgainstOrt } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const MS = 'com.microsoft';
const [BATCH, LENGTH, HIDDEN, HEADS, FFN, LAYERS] = [2, 11, 36, 4, 76, 2];

/** The encoder's graph: embeddings [B, S, H] and an int64 mask [B, S] in, the last hidden states out. */
function encoder(opset: number): Uint8Array {
  const graph = new GraphBuilder('bert_encoder')
    .input('embeddings', 'FP32', ['batch', 'sequence', HIDDEN])
    .input('attention_mask', 'INT64', ['batch', 'sequence']);
  const weight = (name: string, shape: number[], scale: number) => {
    const tensor = randomTensor(shape, scale);
    graph.initializer(name, 'FP32', shape, tensor.data);
    return name;
  };
  graph.node('Cast', ['attention_mask'], ['mask_index'], { to: 6 }, 'mask_cast');
  let hidden = 'embeddings';
  for (let layer = 0; layer < LAYERS; layer++) {
    const at = (name: string) => `l${layer}_${name}`;
    const epsilon = { epsilon: float(1e-12) };
    graph.node('Attention', [hidden, weight(at('qkv_w'), [HIDDEN, 3 * HIDDEN], 0.3), weight(at('qkv_b'), [3 * HIDDEN], 0.1), 'mask_index'], [at('attention')],
      { num_heads: HEADS }, at('attention'), MS);
    graph.node('MatMul', [at('attention'), weight(at('out_w'), [HIDDEN, HIDDEN], 0.3)], [at('projected')], {}, at('out_proj'));
    graph.node('SkipLayerNormalization', [at('projected'), hidden, weight(at('ln1_g'), [HIDDEN], 1), weight(at('ln1_b'), [HIDDEN], 0.1), weight(at('out_b'), [HIDDEN], 0.1)],
      [at('normed')], epsilon, at('skip_ln1'), MS);
    graph.node('MatMul', [at('normed'), weight(at('ff1_w'), [HIDDEN, FFN], 0.3)], [at('ff1')], {}, at('ff1'));
    graph.node(layer % 2 === 0 ? 'BiasGelu' : 'FastGelu', [at('ff1'), weight(at('ff1_b'), [FFN], 0.1)], [at('activated')], {}, at('gelu'), MS);
    graph.node('MatMul', [at('activated'), weight(at('ff2_w'), [FFN, HIDDEN], 0.3)], [at('ff2')], {}, at('ff2'));
    graph.node('SkipLayerNormalization', [at('ff2'), at('normed'), weight(at('ln2_g'), [HIDDEN], 1), weight(at('ln2_b'), [HIDDEN], 0.1), weight(at('ff2_b'), [HIDDEN], 0.1)],
      [at('out')], epsilon, at('skip_ln2'), MS);
    hidden = at('out');
  }
  graph.node('Identity', [hidden], ['last_hidden_state'], {}, 'output');
  graph.output('last_hidden_state', 'FP32', ['batch', 'sequence', HIDDEN]);
  return graph.toBytes({ opset });
}

describe('BERT-style encoder with ORT-fused contrib operators', () => {
  for (const opset of [11, 21]) {
    it(`opset ${opset}: ${LAYERS} layers of Attention + SkipLayerNormalization + BiasGelu / FastGelu match onnxruntime`, () => checkModelAgainstOrt(gpu, encoder(opset), [
      { name: 'embeddings', shape: [BATCH, LENGTH, HIDDEN] },
      // Right padding: the first few tokens of each sequence kept, the rest masked.
      { name: 'attention_mask', shape: [BATCH, LENGTH], datatype: 'INT64', fill: (shape) => paddingMask(shape) },
    ], [{ name: 'last_hidden_state', shape: [BATCH, LENGTH, HIDDEN] }]));
  }
});

/** 1 for each sequence's first n tokens (n random, at least 1), 0 after. */
function paddingMask(shape: number[]) {
  const [batch, length] = shape;
  const lengths = randomIntegers([batch], 1, length);
  const data = new BigInt64Array(batch * length);
  for (let b = 0; b < batch; b++) for (let t = 0; t < Number(lengths.data[b]); t++) data[b * length + t] = 1n;
  return { datatype: 'INT64' as const, shape: [...shape], data };
}
