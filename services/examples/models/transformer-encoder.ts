/**
 * A BERT-style transformer encoder built in code with random weights, for numerics tests and
 * benchmarks. Per layer (post-norm, as BERT):
 *
 *   q, k, v = x @ Wq + bq, x @ Wk + bk, x @ Wv + bv                 [N, S, H]
 *   heads   = Reshape [N, S, heads, H / heads] → Transpose            q, v: [N, heads, S, d]; k: [N, heads, d, S]
 *   probs   = Softmax((q @ kᵀ) / sqrt(d), axis -1)                    [N, heads, S, S]
 *   context = Transpose(probs @ v) → Reshape [N, S, H]
 *   x       = LayerNorm(x + context @ Wo + bo)
 *   x       = LayerNorm(x + Gelu(x @ W1 + b1) @ W2 + b2)              (MLP of width 2H)
 *
 * The input is the embedded sequence plus a learned position embedding; the batch dim is
 * symbolic, so one model serves every batch size. Opset 20 for the Gelu operator.
 */
import { float, GraphBuilder } from '../../onnx/builder.ts';
import { freshSeed, WeightSource, type ExampleModel } from './common.ts';

export interface TransformerEncoderOptions {
  /** Weights are a function of the seed; default: a fresh random seed. */
  seed?: number;
  /** Sequence length (default 13). */
  sequence?: number;
  /** Hidden size (default 64). */
  hidden?: number;
  /** Attention heads; must divide `hidden` (default 4). */
  heads?: number;
  /** Encoder layers (default 2). */
  layers?: number;
  /** ONNX opset of the model (default 20; Gelu needs 20, and the runtime takes up to 21). */
  opset?: number;
}

export function buildTransformerEncoder(options: TransformerEncoderOptions = {}): ExampleModel {
  const seed = options.seed ?? freshSeed();
  const sequence = options.sequence ?? 13;
  const hidden = options.hidden ?? 64;
  const heads = options.heads ?? 4;
  const layers = options.layers ?? 2;
  if (hidden % heads !== 0) throw new RangeError(`${heads} heads do not divide hidden size ${hidden}`);
  const headSize = hidden / heads;
  const mlp = 2 * hidden;
  const weights = new WeightSource(seed);
  const graph = new GraphBuilder('transformer_encoder').input('x', 'FP32', [-1, sequence, hidden]);
  const int64 = (name: string, values: number[]) => graph.initializer(name, 'INT64', [values.length], BigInt64Array.from(values, BigInt));

  // Reshapes copy the batch and sequence dims (0), so they hold for any batch size.
  int64('split_heads', [0, 0, heads, headSize]);
  int64('merge_heads', [0, 0, hidden]);
  graph.initializer('attention_scale', 'FP32', [], Float32Array.of(Math.sqrt(headSize)))
    .initializer('position', 'FP32', [sequence, hidden], weights.uniform(sequence * hidden, 0.5))
    .node('Add', ['x', 'position'], ['embedded'], {}, 'position_embedding');

  /** x @ W + b with W [inSize, outSize]; `gain` as in WeightSource.layer. */
  const dense = (name: string, input: string, inSize: number, outSize: number, gain = 1) => {
    graph.initializer(`${name}.weight`, 'FP32', [inSize, outSize], weights.layer(inSize * outSize, inSize, gain))
      .initializer(`${name}.bias`, 'FP32', [outSize], weights.uniform(outSize, 0.1))
      .node('MatMul', [input, `${name}.weight`], [`${name}.product`], {}, `${name}.matmul`)
      .node('Add', [`${name}.product`, `${name}.bias`], [name], {}, `${name}.add`);
    return name;
  };
  const layerNorm = (name: string, input: string, output = name) => {
    graph.initializer(`${name}.scale`, 'FP32', [hidden], weights.between(hidden, 0.8, 1.2))
      .initializer(`${name}.shift`, 'FP32', [hidden], weights.uniform(hidden, 0.1))
      .node('LayerNormalization', [input, `${name}.scale`, `${name}.shift`], [output], { axis: -1, epsilon: float(1e-5) }, name);
    return output;
  };

  let x = 'embedded';
  for (let layer = 0; layer < layers; layer++) {
    const p = `layer${layer}`;
    const q = dense(`${p}.query`, x, hidden, hidden);
    const k = dense(`${p}.key`, x, hidden, hidden);
    const v = dense(`${p}.value`, x, hidden, hidden);
    graph
      .node('Reshape', [q, 'split_heads'], [`${p}.q_split`], {}, `${p}.q_split`)
      .node('Transpose', [`${p}.q_split`], [`${p}.q_heads`], { perm: [0, 2, 1, 3] }, `${p}.q_heads`)
      .node('Reshape', [k, 'split_heads'], [`${p}.k_split`], {}, `${p}.k_split`)
      .node('Transpose', [`${p}.k_split`], [`${p}.k_heads_t`], { perm: [0, 2, 3, 1] }, `${p}.k_heads_t`)
      .node('Reshape', [v, 'split_heads'], [`${p}.v_split`], {}, `${p}.v_split`)
      .node('Transpose', [`${p}.v_split`], [`${p}.v_heads`], { perm: [0, 2, 1, 3] }, `${p}.v_heads`)
      .node('MatMul', [`${p}.q_heads`, `${p}.k_heads_t`], [`${p}.scores`], {}, `${p}.scores`)
      .node('Div', [`${p}.scores`, 'attention_scale'], [`${p}.scaled`], {}, `${p}.scale`)
      .node('Softmax', [`${p}.scaled`], [`${p}.probs`], { axis: -1 }, `${p}.softmax`)
      .node('MatMul', [`${p}.probs`, `${p}.v_heads`], [`${p}.context_heads`], {}, `${p}.context`)
      .node('Transpose', [`${p}.context_heads`], [`${p}.context_t`], { perm: [0, 2, 1, 3] }, `${p}.context_t`)
      .node('Reshape', [`${p}.context_t`, 'merge_heads'], [`${p}.context_merged`], {}, `${p}.context_merged`);
    const attention = dense(`${p}.attention_out`, `${p}.context_merged`, hidden, hidden);
    graph.node('Add', [attention, x], [`${p}.attention_residual`], {}, `${p}.attention_residual`);
    const attended = layerNorm(`${p}.attention_norm`, `${p}.attention_residual`);
    const up = dense(`${p}.mlp_up`, attended, hidden, mlp, 2);
    graph.node('Gelu', [up], [`${p}.mlp_gelu`], {}, `${p}.mlp_gelu`);
    const down = dense(`${p}.mlp_down`, `${p}.mlp_gelu`, mlp, hidden);
    graph.node('Add', [down, attended], [`${p}.mlp_residual`], {}, `${p}.mlp_residual`);
    x = layerNorm(`${p}.mlp_norm`, `${p}.mlp_residual`, layer === layers - 1 ? 'hidden' : `${p}.mlp_norm`);
  }
  graph.output('hidden', 'FP32', [-1, sequence, hidden]);

  const perLayer = 2 * sequence * (4 * hidden * hidden + 2 * sequence * hidden + 2 * hidden * mlp);
  return {
    name: 'transformer_encoder',
    onnx: graph.toBytes({ opset: options.opset ?? 20 }),
    seed,
    input: { name: 'x', shape: [-1, sequence, hidden] },
    output: { name: 'hidden', shape: [-1, sequence, hidden] },
    inputShape: (batch) => [batch, sequence, hidden],
    flopsPerSample: layers * perLayer,
  };
}
