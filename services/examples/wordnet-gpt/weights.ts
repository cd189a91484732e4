/**
 * GPT-2's parameters as one flat Float32Array, laid out tensor by tensor under Hugging Face's
 * GPT2LMHeadModel names and shapes (Conv1D weights [in, out]; lm_head tied to wte, so absent).
 * The same layout holds the gradients and the optimizer's moments.
 */
import { mulberry32 } from '../iris/train.ts';

/** The architecture, named as in GPT-2's config.json. */
export interface Gpt2Config {
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  layer_norm_epsilon: number;
}

/** One tensor of the layout: where it lives in the flat array, and whether weight decay applies. */
export interface TensorSlot {
  name: string;
  shape: number[];
  offset: number;
  size: number;
  /** Matrices decay; biases, LayerNorm gains and position embeddings do not (GPT-2's recipe). */
  decays: boolean;
}

/** Views of one layer's tensors in a flat array. */
export interface LayerTensors {
  ln1Weight: Float32Array; ln1Bias: Float32Array;
  attnWeight: Float32Array; attnBias: Float32Array;
  attnProjWeight: Float32Array; attnProjBias: Float32Array;
  ln2Weight: Float32Array; ln2Bias: Float32Array;
  fcWeight: Float32Array; fcBias: Float32Array;
  fcProjWeight: Float32Array; fcProjBias: Float32Array;
}

/** Views of every tensor in a flat array. */
export interface ModelTensors {
  wte: Float32Array;
  wpe: Float32Array;
  layers: LayerTensors[];
  lnfWeight: Float32Array;
  lnfBias: Float32Array;
}

/** Each layer's tensors: the view's key, the Hugging Face name's suffix, the shape, and decay. */
function layerTensorSpecs(config: Gpt2Config): Array<[keyof LayerTensors, string, number[], boolean]> {
  const c = config.n_embd;
  return [
    ['ln1Weight', 'ln_1.weight', [c], false], ['ln1Bias', 'ln_1.bias', [c], false],
    ['attnWeight', 'attn.c_attn.weight', [c, 3 * c], true], ['attnBias', 'attn.c_attn.bias', [3 * c], false],
    ['attnProjWeight', 'attn.c_proj.weight', [c, c], true], ['attnProjBias', 'attn.c_proj.bias', [c], false],
    ['ln2Weight', 'ln_2.weight', [c], false], ['ln2Bias', 'ln_2.bias', [c], false],
    ['fcWeight', 'mlp.c_fc.weight', [c, 4 * c], true], ['fcBias', 'mlp.c_fc.bias', [4 * c], false],
    ['fcProjWeight', 'mlp.c_proj.weight', [4 * c, c], true], ['fcProjBias', 'mlp.c_proj.bias', [c], false],
  ];
}

/** Every tensor in flat order: wte, wpe, each block's, ln_f. */
export function tensorLayout(config: Gpt2Config): TensorSlot[] {
  if (config.n_embd % config.n_head !== 0) {
    throw new RangeError(`n_embd (${config.n_embd}) must be a multiple of n_head (${config.n_head})`);
  }
  const specs: Array<[string, number[], boolean]> = [
    ['transformer.wte.weight', [config.vocab_size, config.n_embd], true],
    ['transformer.wpe.weight', [config.n_positions, config.n_embd], false],
  ];
  for (let layer = 0; layer < config.n_layer; layer++) {
    for (const [, suffix, shape, decays] of layerTensorSpecs(config)) specs.push([`transformer.h.${layer}.${suffix}`, shape, decays]);
  }
  specs.push(['transformer.ln_f.weight', [config.n_embd], false], ['transformer.ln_f.bias', [config.n_embd], false]);
  let offset = 0;
  return specs.map(([name, shape, decays]) => {
    const size = shape.reduce((product, dimension) => product * dimension, 1);
    const slot = { name, shape, offset, size, decays };
    offset += size;
    return slot;
  });
}

/** How many floats the layout holds. */
export function parameterCount(config: Gpt2Config): number {
  const layout = tensorLayout(config);
  const last = layout[layout.length - 1];
  return last.offset + last.size;
}

/** Named views into a flat array laid out by `tensorLayout`. */
export function tensorViews(config: Gpt2Config, flat: Float32Array): ModelTensors {
  const slots = new Map(tensorLayout(config).map((slot) => [slot.name, slot]));
  const view = (name: string) => {
    const slot = slots.get(name)!;
    return flat.subarray(slot.offset, slot.offset + slot.size);
  };
  const layers = Array.from({ length: config.n_layer }, (_, layer) => Object.fromEntries(
    layerTensorSpecs(config).map(([key, suffix]) => [key, view(`transformer.h.${layer}.${suffix}`)]),
  ) as unknown as LayerTensors);
  return {
    wte: view('transformer.wte.weight'),
    wpe: view('transformer.wpe.weight'),
    layers,
    lnfWeight: view('transformer.ln_f.weight'),
    lnfBias: view('transformer.ln_f.bias'),
  };
}

/**
 * GPT-2's initialization, seeded: weights and embeddings N(0, 0.02), the two projections back into
 * the residual stream N(0, 0.02 / √(2 · n_layer)) so the stream's variance does not grow with depth,
 * LayerNorm gains 1, biases 0.
 */
export function initialParameters(config: Gpt2Config, seed: number): Float32Array {
  const random = mulberry32(seed);
  const gaussian = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const flat = new Float32Array(parameterCount(config));
  for (const slot of tensorLayout(config)) {
    const values = flat.subarray(slot.offset, slot.offset + slot.size);
    if (slot.name.endsWith('ln_1.weight') || slot.name.endsWith('ln_2.weight') || slot.name.endsWith('ln_f.weight')) {
      values.fill(1);
    } else if (slot.shape.length === 2) {
      const std = slot.name.endsWith('c_proj.weight') ? 0.02 / Math.sqrt(2 * config.n_layer) : 0.02;
      for (let i = 0; i < values.length; i++) values[i] = std * gaussian();
    }
  }
  return flat;
}
