/**
 * The reference for the text-generation numerics: GPT-2 and Llama-family forward passes written
 * directly from the Hugging Face modeling code, in float64 on plain arrays, reading the
 * checkpoint's tensors by their Hugging Face names and its raw config.json. It shares no code
 * with the engine (no layout, no padding, no kernels): Conv1D is x @ W with W [in, out], Linear
 * is W x with W [out, in], rotary embeddings are rotate_half with frequencies computed here, and
 * attention keeps every past key and value in a plain list.
 */

type Tensors = ReadonlyMap<string, Float32Array>;
type Vector = Float64Array;

function tensor(tensors: Tensors, name: string): Float32Array {
  const found = tensors.get(name);
  if (!found) throw new Error(`reference: no tensor ${name}`);
  return found;
}

/** x @ W for W [inputs, outputs] row-major (GPT-2's Conv1D), plus bias. */
function conv1d(x: Vector, weight: Float32Array, bias: Float32Array | undefined, outputs: number): Vector {
  const y = new Float64Array(outputs);
  for (let o = 0; o < outputs; o++) y[o] = bias ? bias[o] : 0;
  for (let i = 0; i < x.length; i++) {
    for (let o = 0; o < outputs; o++) y[o] += x[i] * weight[i * outputs + o];
  }
  return y;
}

/** W x for W [outputs, inputs] row-major (torch.nn.Linear), plus bias. */
function linear(x: Vector, weight: Float32Array, bias: Float32Array | undefined, outputs: number): Vector {
  const y = new Float64Array(outputs);
  for (let o = 0; o < outputs; o++) {
    let sum = bias ? bias[o] : 0;
    for (let i = 0; i < x.length; i++) sum += weight[o * x.length + i] * x[i];
    y[o] = sum;
  }
  return y;
}

function layerNorm(x: Vector, weight: Float32Array, bias: Float32Array, epsilon: number): Vector {
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  return x.map((value, i) => ((value - mean) / Math.sqrt(variance + epsilon)) * weight[i] + bias[i]);
}

function rmsNorm(x: Vector, weight: Float32Array, epsilon: number): Vector {
  const meanSquare = x.reduce((a, b) => a + b * b, 0) / x.length;
  return x.map((value, i) => (value / Math.sqrt(meanSquare + epsilon)) * weight[i]);
}

const geluNew = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const silu = (v: number) => v / (1 + Math.exp(-v));

/** Softmax attention of one head's query over its keys and values. */
function attend(query: Vector, keys: readonly Vector[], values: readonly Vector[], scale: number): Vector {
  const scores = keys.map((key) => key.reduce((sum, k, d) => sum + k * query[d], 0) * scale);
  const max = Math.max(...scores);
  const weights = scores.map((score) => Math.exp(score - max));
  const total = weights.reduce((a, b) => a + b, 0);
  const out = new Float64Array(query.length);
  values.forEach((value, j) => value.forEach((v, d) => (out[d] += (weights[j] / total) * v)));
  return out;
}

/** Hugging Face's rotary inverse frequencies (default, linear, dynamic within range, llama3). */
function ropeFrequencies(config: Record<string, any>, headDim: number): number[] {
  const theta = config.rope_theta ?? 10000;
  const base = Array.from({ length: headDim / 2 }, (_, i) => 1 / theta ** ((2 * i) / headDim));
  const scaling = config.rope_scaling;
  const type = scaling?.rope_type ?? scaling?.type ?? 'default';
  if (type === 'linear') return base.map((f) => f / scaling.factor);
  if (type === 'llama3') {
    const old = scaling.original_max_position_embeddings;
    const lowWavelen = old / scaling.low_freq_factor;
    const highWavelen = old / scaling.high_freq_factor;
    return base.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      const scaled = wavelen > lowWavelen ? f / scaling.factor : f;
      const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
      if (!medium) return scaled;
      const smooth = (old / wavelen - scaling.low_freq_factor) / (scaling.high_freq_factor - scaling.low_freq_factor);
      return (1 - smooth) * (scaled / scaling.factor) + smooth * scaled;
    });
  }
  return base;
}

function rotateHalf(x: Vector, position: number, frequencies: readonly number[]): Vector {
  const half = x.length / 2;
  const out = new Float64Array(x.length);
  for (let i = 0; i < half; i++) {
    const cos = Math.cos(position * frequencies[i]);
    const sin = Math.sin(position * frequencies[i]);
    out[i] = x[i] * cos - x[i + half] * sin;
    out[i + half] = x[i + half] * cos + x[i] * sin;
  }
  return out;
}

/** A model fed one token at a time; `next` returns the logits after it. */
export class ReferenceModel {
  private readonly config: Record<string, any>;
  private readonly tensors: Tensors;
  /** Per layer, per kv head: every past position's key and value. */
  private readonly keys: Vector[][][];
  private readonly values: Vector[][][];
  private position = 0;

  constructor(config: Record<string, unknown>, tensors: Tensors) {
    this.config = config;
    this.tensors = tensors;
    const layers = (config.n_layer ?? config.num_hidden_layers) as number;
    const kvHeads = (config.num_key_value_heads ?? config.n_head ?? config.num_attention_heads) as number;
    this.keys = Array.from({ length: layers }, () => Array.from({ length: kvHeads }, () => []));
    this.values = Array.from({ length: layers }, () => Array.from({ length: kvHeads }, () => []));
  }

  next(token: number): Float64Array {
    const logits = this.config.model_type === 'gpt2' ? this.gpt2(token) : this.llama(token);
    this.position += 1;
    return logits;
  }

  private gpt2(token: number): Vector {
    const c = this.config;
    const t = (name: string) => tensor(this.tensors, name);
    const p = this.tensors.has('transformer.wte.weight') ? 'transformer.' : '';
    const hidden = c.n_embd as number;
    const heads = c.n_head as number;
    const headDim = hidden / heads;
    const wte = t(`${p}wte.weight`);
    const wpe = t(`${p}wpe.weight`);
    let x = Float64Array.from({ length: hidden }, (_, i) => wte[token * hidden + i] + wpe[this.position * hidden + i]);
    for (let layer = 0; layer < c.n_layer; layer++) {
      const l = `${p}h.${layer}`;
      const h = layerNorm(x, t(`${l}.ln_1.weight`), t(`${l}.ln_1.bias`), c.layer_norm_epsilon);
      const qkv = conv1d(h, t(`${l}.attn.c_attn.weight`), t(`${l}.attn.c_attn.bias`), 3 * hidden);
      const merged = new Float64Array(hidden);
      for (let head = 0; head < heads; head++) {
        const slice = (part: number) => qkv.slice(part * hidden + head * headDim, part * hidden + (head + 1) * headDim);
        this.keys[layer][head].push(slice(1));
        this.values[layer][head].push(slice(2));
        const scale = 1 / Math.sqrt(headDim) / (c.scale_attn_by_inverse_layer_idx ? layer + 1 : 1);
        merged.set(attend(slice(0), this.keys[layer][head], this.values[layer][head], scale), head * headDim);
      }
      x = x.map((value, i) => value + conv1d(merged, t(`${l}.attn.c_proj.weight`), t(`${l}.attn.c_proj.bias`), hidden)[i]);
      const h2 = layerNorm(x, t(`${l}.ln_2.weight`), t(`${l}.ln_2.bias`), c.layer_norm_epsilon);
      const up = conv1d(h2, t(`${l}.mlp.c_fc.weight`), t(`${l}.mlp.c_fc.bias`), c.n_inner).map(geluNew);
      const down = conv1d(up, t(`${l}.mlp.c_proj.weight`), t(`${l}.mlp.c_proj.bias`), hidden);
      x = x.map((value, i) => value + down[i]);
    }
    const final = layerNorm(x, t(`${p}ln_f.weight`), t(`${p}ln_f.bias`), c.layer_norm_epsilon);
    const head = c.tie_word_embeddings === false ? t('lm_head.weight') : wte;
    return linear(final, head, undefined, c.vocab_size);
  }

  private llama(token: number): Vector {
    const c = this.config;
    const t = (name: string) => tensor(this.tensors, name);
    const optional = (name: string) => this.tensors.get(name);
    const hidden = c.hidden_size as number;
    const heads = c.num_attention_heads as number;
    const kvHeads = (c.num_key_value_heads ?? heads) as number;
    const headDim = (c.head_dim ?? hidden / heads) as number;
    const frequencies = ropeFrequencies(c, headDim);
    const embed = t('model.embed_tokens.weight');
    let x = Float64Array.from({ length: hidden }, (_, i) => embed[token * hidden + i]);
    for (let layer = 0; layer < c.num_hidden_layers; layer++) {
      const l = `model.layers.${layer}`;
      const a = `${l}.self_attn`;
      const h = rmsNorm(x, t(`${l}.input_layernorm.weight`), c.rms_norm_eps);
      const q = linear(h, t(`${a}.q_proj.weight`), optional(`${a}.q_proj.bias`), heads * headDim);
      const k = linear(h, t(`${a}.k_proj.weight`), optional(`${a}.k_proj.bias`), kvHeads * headDim);
      const v = linear(h, t(`${a}.v_proj.weight`), optional(`${a}.v_proj.bias`), kvHeads * headDim);
      for (let head = 0; head < kvHeads; head++) {
        this.keys[layer][head].push(rotateHalf(k.slice(head * headDim, (head + 1) * headDim), this.position, frequencies));
        this.values[layer][head].push(v.slice(head * headDim, (head + 1) * headDim));
      }
      const merged = new Float64Array(heads * headDim);
      for (let head = 0; head < heads; head++) {
        // repeat_kv: query head h uses kv head h / (heads / kvHeads).
        const kvHead = Math.floor(head / (heads / kvHeads));
        const query = rotateHalf(q.slice(head * headDim, (head + 1) * headDim), this.position, frequencies);
        merged.set(attend(query, this.keys[layer][kvHead], this.values[layer][kvHead], 1 / Math.sqrt(headDim)), head * headDim);
      }
      const attention = linear(merged, t(`${a}.o_proj.weight`), optional(`${a}.o_proj.bias`), hidden);
      x = x.map((value, i) => value + attention[i]);
      const h2 = rmsNorm(x, t(`${l}.post_attention_layernorm.weight`), c.rms_norm_eps);
      const m = `${l}.mlp`;
      const gate = linear(h2, t(`${m}.gate_proj.weight`), optional(`${m}.gate_proj.bias`), c.intermediate_size);
      const up = linear(h2, t(`${m}.up_proj.weight`), optional(`${m}.up_proj.bias`), c.intermediate_size);
      const down = linear(gate.map((g, i) => silu(g) * up[i]), t(`${m}.down_proj.weight`), optional(`${m}.down_proj.bias`), hidden);
      x = x.map((value, i) => value + down[i]);
    }
    const final = rmsNorm(x, t('model.norm.weight'), c.rms_norm_eps);
    const head = c.tie_word_embeddings ? embed : t('lm_head.weight');
    return linear(final, head, undefined, c.vocab_size);
  }
}

/** Index of the largest value, the lowest on ties. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** Greedy generation of `count` tokens after `prompt`, with the logits before each. */
export function referenceGreedy(config: Record<string, unknown>, tensors: Tensors, prompt: readonly number[], count: number): { tokens: number[]; logits: Float64Array[] } {
  const model = new ReferenceModel(config, tensors);
  let logits: Float64Array = new Float64Array();
  for (const token of prompt) logits = model.next(token);
  const tokens: number[] = [];
  const allLogits: Float64Array[] = [];
  for (let step = 0; step < count; step++) {
    allLogits.push(logits);
    const token = argmax(logits);
    tokens.push(token);
    if (step + 1 < count) logits = model.next(token);
  }
  return { tokens, logits: allLogits };
}

/** The logits before each of `tokens` when they follow `prompt` (whoever chose them). */
export function referenceLogitsAlong(config: Record<string, unknown>, tensors: Tensors, prompt: readonly number[], tokens: readonly number[]): Float64Array[] {
  const model = new ReferenceModel(config, tensors);
  let logits: Float64Array = new Float64Array();
  for (const token of prompt) logits = model.next(token);
  return tokens.map((token) => {
    const before = logits;
    logits = model.next(token);
    return before;
  });
}
