/**
 * A BERT-style encoder as onnxruntime's transformer optimizer leaves it: EmbedLayerNormalization
 * of the token and segment ids (its mask_index, the count of each row's mask, feeding every
 * Attention), or embeddings given as an input with the raw int64 mask cast to int32; per layer a
 * fused Attention (packed Q/K/V weights), the output projection's bias folded into
 * SkipLayerNormalization with the residual, and a feed-forward block whose activation is
 * BiasGelu in one layer and FastGelu in the next. Compared with onnxruntime's CPU provider end to
 * end on fresh inputs and masks, at opsets 11 and 21, and in fp16 storage mode within
 * FP16_TOLERANCE (the largest error over the output's RMS printed for docs/executor.md).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { float, GraphBuilder } from '../../../services/onnx/builder.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { checkModelAgainstOrt, freshInputs, type InputSpec } from '../numerics/one-node.ts';
import { expectCloseFp16, expectMatchesOrt, randomIntegers, randomTensor, runOrt } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const MS = 'com.microsoft';
const [BATCH, LENGTH, HIDDEN, HEADS, FFN, LAYERS, VOCABULARY] = [2, 11, 36, 4, 76, 2, 50];

/**
 * The encoder's graph: int64 input_ids, token_type_ids and attention_mask [B, S] in (`embed`),
 * or embeddings [B, S, H] and the mask; the last hidden states out.
 */
function encoder(opset: number, embed: boolean): Uint8Array {
  const graph = new GraphBuilder('bert_encoder');
  /** Uniform in [offset - scale, offset + scale): layer norm gammas about 1, as trained ones are. */
  const weight = (name: string, shape: number[], scale: number, offset = 0) => {
    const tensor = randomTensor(shape, scale);
    graph.initializer(name, 'FP32', shape, (tensor.data as Float32Array).map((value) => value + offset));
    return name;
  };
  graph.input('attention_mask', 'INT64', ['batch', 'sequence']);
  graph.node('Cast', ['attention_mask'], ['mask_int32'], { to: 6 }, 'mask_cast');
  let hidden = 'embeddings';
  if (embed) {
    for (const name of ['input_ids', 'token_type_ids']) graph.input(name, 'INT64', ['batch', 'sequence']).node('Cast', [name], [`${name}_int32`], { to: 6 }, `${name}_cast`);
    graph.node('EmbedLayerNormalization', [
      'input_ids_int32', 'token_type_ids_int32', weight('word_embeddings', [VOCABULARY, HIDDEN], 1), weight('position_embeddings', [32, HIDDEN], 1),
      weight('token_type_embeddings', [2, HIDDEN], 1), weight('embeddings_ln_g', [HIDDEN], 0.2, 1), weight('embeddings_ln_b', [HIDDEN], 0.1), 'mask_int32',
    ], ['embeddings', 'mask_index'], { epsilon: float(1e-12) }, 'embed_layer_norm', MS);
  } else {
    graph.input('embeddings', 'FP32', ['batch', 'sequence', HIDDEN]);
  }
  const mask = embed ? 'mask_index' : 'mask_int32';
  for (let layer = 0; layer < LAYERS; layer++) {
    const at = (name: string) => `l${layer}_${name}`;
    const epsilon = { epsilon: float(1e-12) };
    graph.node('Attention', [hidden, weight(at('qkv_w'), [HIDDEN, 3 * HIDDEN], 0.3), weight(at('qkv_b'), [3 * HIDDEN], 0.1), mask], [at('attention')],
      { num_heads: HEADS }, at('attention'), MS);
    graph.node('MatMul', [at('attention'), weight(at('out_w'), [HIDDEN, HIDDEN], 0.3)], [at('projected')], {}, at('out_proj'));
    graph.node('SkipLayerNormalization', [at('projected'), hidden, weight(at('ln1_g'), [HIDDEN], 0.2, 1), weight(at('ln1_b'), [HIDDEN], 0.1), weight(at('out_b'), [HIDDEN], 0.1)],
      [at('normed')], epsilon, at('skip_ln1'), MS);
    graph.node('MatMul', [at('normed'), weight(at('ff1_w'), [HIDDEN, FFN], 0.3)], [at('ff1')], {}, at('ff1'));
    graph.node(layer % 2 === 0 ? 'BiasGelu' : 'FastGelu', [at('ff1'), weight(at('ff1_b'), [FFN], 0.1)], [at('activated')], {}, at('gelu'), MS);
    graph.node('MatMul', [at('activated'), weight(at('ff2_w'), [FFN, HIDDEN], 0.3)], [at('ff2')], {}, at('ff2'));
    graph.node('SkipLayerNormalization', [at('ff2'), at('normed'), weight(at('ln2_g'), [HIDDEN], 0.2, 1), weight(at('ln2_b'), [HIDDEN], 0.1), weight(at('ff2_b'), [HIDDEN], 0.1)],
      [at('out')], epsilon, at('skip_ln2'), MS);
    hidden = at('out');
  }
  graph.node('Identity', [hidden], ['last_hidden_state'], {}, 'output');
  graph.output('last_hidden_state', 'FP32', ['batch', 'sequence', HIDDEN]);
  return graph.toBytes({ opset });
}

describe('BERT-style encoder with ORT-fused contrib operators', () => {
  // Right padding: the first few tokens of each sequence kept, the rest masked.
  const mask = { name: 'attention_mask', shape: [BATCH, LENGTH], datatype: 'INT64' as const, fill: (shape: number[]) => paddingMask(shape) };
  const ids = (name: string, high: number) => ({ name, shape: [BATCH, LENGTH], datatype: 'INT64' as const, fill: (shape: number[]) => randomIntegers(shape, 0, high) });
  const outputs = [{ name: 'last_hidden_state', shape: [BATCH, LENGTH, HIDDEN] }];
  const inputsOf = (embed: boolean): InputSpec[] =>
    (embed ? [ids('input_ids', VOCABULARY - 1), ids('token_type_ids', 1), mask] : [{ name: 'embeddings', shape: [BATCH, LENGTH, HIDDEN] }, mask]);
  for (const embed of [true, false]) {
    it(`fp16 storage (${embed ? 'EmbedLayerNormalization' : 'embeddings given'}): within the fp16 tolerance of onnxruntime's fp32`, async () => {
      const bytes = encoder(21, embed);
      const model = await compileOnnxModel(gpu, bytes, { precision: 'fp16', isolate: false });
      try {
        expect(model.precision).toBe(gpu.hasF16 ? 'fp16' : 'fp32');
        let [largest, largestAbsolute] = [0, 0];
        for (let round = 0; round < 2; round++) {
          const feeds = freshInputs(inputsOf(embed));
          const [ours, reference] = await Promise.all([model.run(feeds), runOrt(bytes, feeds)]);
          const [got, want] = [ours.outputs.get('last_hidden_state'), reference.get('last_hidden_state')!];
          largest = Math.max(largest, expectCloseFp16('last_hidden_state', got, want));
          (want.data as Float32Array).forEach((value, index) => { largestAbsolute = Math.max(largestAbsolute, Math.abs((got!.data as Float32Array)[index] - value)); });
        }
        console.log(`contrib BERT-style encoder (${embed ? 'EmbedLayerNormalization' : 'embeddings'}), fp16: max abs error ${largestAbsolute.toExponential(1)}, max error / RMS ${largest.toExponential(1)}`);
      } finally {
        model.dispose();
      }
    });
  }
  it('compiles in the isolated worker the service uses, then matches onnxruntime', async () => {
    const bytes = encoder(21, true);
    const model = await compileOnnxModel(gpu, bytes);
    try {
      await expectMatchesOrt(model, bytes, freshInputs(inputsOf(true)));
    } finally {
      model.dispose();
    }
  });
  for (const opset of [11, 21]) {
    it(`opset ${opset}: EmbedLayerNormalization's mask_index into ${LAYERS} layers of Attention + SkipLayerNormalization + BiasGelu / FastGelu`, () =>
      checkModelAgainstOrt(gpu, encoder(opset, true), [ids('input_ids', VOCABULARY - 1), ids('token_type_ids', 1), mask], outputs));
    it(`opset ${opset}: embeddings and the raw mask into the same layers`, () =>
      checkModelAgainstOrt(gpu, encoder(opset, false), [{ name: 'embeddings', shape: [BATCH, LENGTH, HIDDEN] }, mask], outputs));
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
