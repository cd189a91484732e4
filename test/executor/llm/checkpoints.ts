/**
 * Small random Hugging Face checkpoints written in code, for the text-generation tests: a
 * config.json, the weights as safetensors (F32, F16 or BF16; one file or shards with an index)
 * under their Hugging Face names, and the same weights as f32 arrays (after the dtype's
 * rounding) for the reference implementation. Weights come from a seeded generator, so a spec
 * always gives the same model.
 */
import type { CheckpointFiles } from '../../../services/executor/llm/checkpoint.ts';

export interface CheckpointSpec {
  family: 'gpt2' | 'llama';
  /** Default GPT2LMHeadModel / LlamaForCausalLM. */
  architecture?: string;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads?: number;
  inter: number;
  vocab: number;
  maxPositions: number;
  tied?: boolean;
  /** Llama: config fields merged in (rope_theta, rope_scaling, attention_bias, mlp_bias, head_dim, ...). */
  extra?: Record<string, unknown>;
  dtype?: 'F32' | 'F16' | 'BF16';
  /** Split the tensors over this many files with model.safetensors.index.json. */
  shards?: number;
  /** GPT-2 names with the "transformer." prefix, as GPT2LMHeadModel.save_pretrained writes them. */
  prefixed?: boolean;
  seed: number;
}

export interface Checkpoint {
  files: Map<string, Uint8Array>;
  config: Record<string, unknown>;
  /** Every tensor by name, as the reference reads it (dtype rounding applied). */
  tensors: Map<string, Float32Array>;
}

/** A deterministic uniform generator in [-1, 1) (mulberry32). */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

function bf16Bits(value: number): number {
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0];
  // Round to nearest even on the 16 bits kept.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** The values as stored in `dtype` and their bytes. */
function encode(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): { stored: Float32Array; bytes: Uint8Array } {
  if (dtype === 'F32') return { stored: values, bytes: new Uint8Array(values.buffer.slice(0)) };
  if (dtype === 'F16') {
    const halves = new Float16Array(values);
    return { stored: Float32Array.from(halves), bytes: new Uint8Array(halves.buffer) };
  }
  const halves = Uint16Array.from(values, bf16Bits);
  const stored = new Float32Array(new Uint32Array(Array.from(halves, (half) => half << 16)).buffer);
  return { stored, bytes: new Uint8Array(halves.buffer) };
}

/** A safetensors file of `tensors` (name → dtype, shape, bytes), header padded to 8 bytes. */
export function safetensorsBytes(tensors: ReadonlyArray<{ name: string; dtype: string; shape: number[]; bytes: Uint8Array }>): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const tensor of tensors) {
    header[tensor.name] = { dtype: tensor.dtype, shape: tensor.shape, data_offsets: [offset, offset + tensor.bytes.byteLength] };
    offset += tensor.bytes.byteLength;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(new TextEncoder().encode(json), 8);
  let position = 8 + json.length;
  for (const tensor of tensors) {
    out.set(tensor.bytes, position);
    position += tensor.bytes.byteLength;
  }
  return out;
}

/**
 * Token embeddings small next to what attention and the MLP add: with a tied head, a large
 * embedding makes a random model repeat its last token forever, which tests little.
 */
const EMBEDDING_SCALE = 0.3;
/** Uniform weights of ±MATRIX_GAIN / sqrt(fan-in): large enough that a random model's tokens vary. */
const MATRIX_GAIN = 3;

/** The tensor names and shapes of a spec, each with the scale of its uniform values. */
function tensorShapes(spec: CheckpointSpec, config: Record<string, unknown>): Array<{ name: string; shape: number[]; scale: number; offset?: number }> {
  const { hidden, inter, vocab, layers } = spec;
  const list: Array<{ name: string; shape: number[]; scale: number; offset?: number }> = [];
  const matrix = (name: string, shape: number[], fanIn: number) => list.push({ name, shape, scale: MATRIX_GAIN / Math.sqrt(fanIn) });
  const norm = (name: string) => list.push({ name, shape: [hidden], scale: 0.2, offset: 1 });
  const bias = (name: string, size: number) => list.push({ name, shape: [size], scale: 0.1 });
  if (spec.family === 'gpt2') {
    const p = spec.prefixed ? 'transformer.' : '';
    list.push({ name: `${p}wte.weight`, shape: [vocab, hidden], scale: EMBEDDING_SCALE }, { name: `${p}wpe.weight`, shape: [spec.maxPositions, hidden], scale: 0.5 });
    for (let i = 0; i < layers; i++) {
      const l = `${p}h.${i}`;
      norm(`${l}.ln_1.weight`); bias(`${l}.ln_1.bias`, hidden);
      matrix(`${l}.attn.c_attn.weight`, [hidden, 3 * hidden], hidden); bias(`${l}.attn.c_attn.bias`, 3 * hidden);
      matrix(`${l}.attn.c_proj.weight`, [hidden, hidden], hidden); bias(`${l}.attn.c_proj.bias`, hidden);
      norm(`${l}.ln_2.weight`); bias(`${l}.ln_2.bias`, hidden);
      matrix(`${l}.mlp.c_fc.weight`, [hidden, inter], hidden); bias(`${l}.mlp.c_fc.bias`, inter);
      matrix(`${l}.mlp.c_proj.weight`, [inter, hidden], inter); bias(`${l}.mlp.c_proj.bias`, hidden);
    }
    norm(`${p}ln_f.weight`); bias(`${p}ln_f.bias`, hidden);
    if (!spec.tied) matrix('lm_head.weight', [vocab, hidden], hidden);
    return list;
  }
  const headDim = (config.head_dim as number | undefined) ?? hidden / spec.heads;
  const qDim = spec.heads * headDim;
  const kvDim = (spec.kvHeads ?? spec.heads) * headDim;
  const qwen = spec.architecture === 'Qwen2ForCausalLM';
  const attentionBias = qwen || config.attention_bias === true;
  list.push({ name: 'model.embed_tokens.weight', shape: [vocab, hidden], scale: EMBEDDING_SCALE });
  for (let i = 0; i < layers; i++) {
    const l = `model.layers.${i}`;
    norm(`${l}.input_layernorm.weight`);
    for (const [name, size] of [['q_proj', qDim], ['k_proj', kvDim], ['v_proj', kvDim]] as const) {
      matrix(`${l}.self_attn.${name}.weight`, [size, hidden], hidden);
      if (attentionBias) bias(`${l}.self_attn.${name}.bias`, size);
    }
    matrix(`${l}.self_attn.o_proj.weight`, [hidden, qDim], qDim);
    if (attentionBias && !qwen) bias(`${l}.self_attn.o_proj.bias`, hidden);
    norm(`${l}.post_attention_layernorm.weight`);
    matrix(`${l}.mlp.gate_proj.weight`, [inter, hidden], hidden);
    matrix(`${l}.mlp.up_proj.weight`, [inter, hidden], hidden);
    matrix(`${l}.mlp.down_proj.weight`, [hidden, inter], inter);
    if (config.mlp_bias === true) {
      bias(`${l}.mlp.gate_proj.bias`, inter); bias(`${l}.mlp.up_proj.bias`, inter); bias(`${l}.mlp.down_proj.bias`, hidden);
    }
  }
  norm('model.norm.weight');
  if (!spec.tied) matrix('lm_head.weight', [vocab, hidden], hidden);
  return list;
}

/** The config.json of a spec, as Hugging Face writes it (the fields the engine reads). */
function configOf(spec: CheckpointSpec): Record<string, unknown> {
  if (spec.family === 'gpt2') {
    return {
      architectures: [spec.architecture ?? 'GPT2LMHeadModel'], model_type: 'gpt2', n_embd: spec.hidden, n_layer: spec.layers, n_head: spec.heads,
      n_inner: spec.inter, n_positions: spec.maxPositions, vocab_size: spec.vocab, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new',
      tie_word_embeddings: spec.tied ?? true, ...spec.extra,
    };
  }
  return {
    architectures: [spec.architecture ?? 'LlamaForCausalLM'], model_type: 'llama', hidden_size: spec.hidden, num_hidden_layers: spec.layers,
    num_attention_heads: spec.heads, num_key_value_heads: spec.kvHeads ?? spec.heads, intermediate_size: spec.inter,
    max_position_embeddings: spec.maxPositions, vocab_size: spec.vocab, rms_norm_eps: 1e-6, hidden_act: 'silu', rope_theta: 10000,
    tie_word_embeddings: spec.tied ?? false, ...spec.extra,
  };
}

/** The checkpoint of `spec` (see the file comment). */
export function buildCheckpoint(spec: CheckpointSpec): Checkpoint {
  const random = generator(spec.seed);
  const config = configOf(spec);
  const dtype = spec.dtype ?? 'F32';
  const tensors = new Map<string, Float32Array>();
  const encoded: Array<{ name: string; dtype: string; shape: number[]; bytes: Uint8Array }> = [];
  for (const { name, shape, scale, offset } of tensorShapes(spec, config)) {
    const values = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (offset ?? 0) + random() * scale);
    const { stored, bytes } = encode(values, dtype);
    tensors.set(name, stored);
    encoded.push({ name, dtype, shape, bytes });
  }
  const files = new Map<string, Uint8Array>([['config.json', new TextEncoder().encode(JSON.stringify(config))]]);
  files.set('generation_config.json', new TextEncoder().encode(JSON.stringify({ eos_token_id: spec.vocab - 1 })));
  const shards = spec.shards ?? 1;
  if (shards === 1) {
    files.set('model.safetensors', safetensorsBytes(encoded));
  } else {
    const weightMap: Record<string, string> = {};
    for (let shard = 0; shard < shards; shard++) {
      const name = `model-${String(shard + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
      const part = encoded.filter((_, index) => index % shards === shard);
      for (const tensor of part) weightMap[tensor.name] = name;
      files.set(name, safetensorsBytes(part));
    }
    files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ metadata: {}, weight_map: weightMap })));
  }
  return { files, config, tensors };
}

/** The checkpoint's files as the loader reads them. */
export function memoryFiles(files: ReadonlyMap<string, Uint8Array>): CheckpointFiles {
  return {
    paths: [...files.keys()],
    read: async (path) => {
      const bytes = files.get(path);
      if (!bytes) throw new Error(`no file ${path}`);
      return bytes;
    },
  };
}
