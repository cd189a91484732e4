/**
 * A Hugging Face config.json read into the one description of a decoder-only transformer the
 * engine runs. Two families: GPT-2 (learned positions, LayerNorm, gelu_new MLP, fused c_attn)
 * and Llama (RMSNorm, rotary positions with optional scaling, grouped-query attention, SwiGLU
 * MLP), which also covers Qwen2 (biases on q, k and v) and Mistral (without a sliding window).
 * A field of the wrong type is INVALID_ARGUMENT naming it; an architecture or option the engine
 * does not implement is FAILED_PRECONDITION naming it, so nothing unsupported loads and computes
 * something else.
 */
import { failedPrecondition, invalidArgument } from '../../domain/index.ts';

export type Family = 'gpt2' | 'llama';

/** How rotary frequencies are scaled (Hugging Face's `rope_scaling`). */
export type RopeScaling =
  | { readonly type: 'default' }
  | { readonly type: 'linear'; readonly factor: number }
  | { readonly type: 'llama3'; readonly factor: number; readonly lowFreqFactor: number; readonly highFreqFactor: number; readonly originalMaxPositions: number };

export interface ModelConfig {
  /** config.json's architectures[0], e.g. "LlamaForCausalLM". */
  readonly architecture: string;
  readonly family: Family;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly layers: number;
  readonly heads: number;
  /** Key/value heads (grouped-query attention); equal to `heads` without it. */
  readonly kvHeads: number;
  readonly headDim: number;
  readonly intermediateSize: number;
  /** The longest sequence (prompt plus generated tokens) the model takes. */
  readonly maxPositions: number;
  readonly normEpsilon: number;
  /** Llama only: rotary embedding base and scaling. */
  readonly ropeTheta: number;
  readonly ropeScaling: RopeScaling;
  /** Biases on the q, k, v projections; on the attention output projection; on the MLP's. */
  readonly qkvBias: boolean;
  readonly outputBias: boolean;
  readonly mlpBias: boolean;
  /** lm_head shares the token embedding. */
  readonly tiedEmbeddings: boolean;
  /** GPT-2's scale_attn_by_inverse_layer_idx: layer i's scores are further divided by i + 1. */
  readonly scaleByInverseLayer: boolean;
}

/** Largest sizes accepted before anything is allocated for them. */
const LIMITS = { vocabSize: 1 << 22, hiddenSize: 1 << 16, layers: 1024, heads: 1024, intermediateSize: 1 << 18, maxPositions: 1 << 20 } as const;
/** The attention kernel keeps a head's dims in registers spread over 64 lanes, four each. */
export const MAX_HEAD_DIM = 256;

const GPT2_ARCHITECTURES = ['GPT2LMHeadModel'];
const LLAMA_ARCHITECTURES = ['LlamaForCausalLM', 'Qwen2ForCausalLM', 'MistralForCausalLM'];

type Json = Record<string, unknown>;

const isRecord = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Reads one field; absent or null gives `fallback` (undefined: required). */
class FieldReader {
  private readonly json: Json;
  private readonly file: string;

  constructor(json: Json, file: string) {
    this.json = json;
    this.file = file;
  }

  has(name: string): boolean {
    return this.json[name] !== undefined && this.json[name] !== null;
  }

  raw(name: string): unknown {
    return this.json[name];
  }

  integer(name: string, fallback?: number, max: number = Number.MAX_SAFE_INTEGER): number {
    const value = this.has(name) ? this.json[name] : fallback;
    if (value === undefined) throw invalidArgument(`${this.file}: '${name}' is required`);
    if (!Number.isSafeInteger(value) || (value as number) < 1) throw invalidArgument(`${this.file}: '${name}' is ${JSON.stringify(value)}; it must be a whole number >= 1`);
    if ((value as number) > max) throw failedPrecondition(`${this.file}: '${name}' is ${value}; the engine takes at most ${max}`);
    return value as number;
  }

  positive(name: string, fallback?: number): number {
    const value = this.has(name) ? this.json[name] : fallback;
    if (value === undefined) throw invalidArgument(`${this.file}: '${name}' is required`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) throw invalidArgument(`${this.file}: '${name}' is ${JSON.stringify(value)}; it must be a number > 0`);
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const value = this.has(name) ? this.json[name] : fallback;
    if (typeof value !== 'boolean') throw invalidArgument(`${this.file}: '${name}' is ${JSON.stringify(value)}; it must be true or false`);
    return value;
  }

  string(name: string, fallback: string): string {
    const value = this.has(name) ? this.json[name] : fallback;
    if (typeof value !== 'string') throw invalidArgument(`${this.file}: '${name}' is ${JSON.stringify(value)}; it must be a string`);
    return value;
  }
}

/** Parses JSON text that must be an object; INVALID_ARGUMENT naming the file otherwise. */
export function parseJsonObject(file: string, bytes: Uint8Array): Json {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw invalidArgument(`${file} is not UTF-8 JSON: ${(error as Error).message}`);
  }
  if (!isRecord(value)) throw invalidArgument(`${file} is not a JSON object`);
  return value;
}

function architectureOf(json: Json): string {
  const architectures = json.architectures;
  if (!Array.isArray(architectures) || architectures.length === 0 || typeof architectures[0] !== 'string') {
    throw invalidArgument(`config.json: 'architectures' is ${JSON.stringify(architectures)}; it must list the model class, e.g. ["LlamaForCausalLM"]`);
  }
  if (architectures.length > 1) throw failedPrecondition(`config.json lists ${architectures.length} architectures; the engine loads one`);
  return architectures[0];
}

function unsupported(option: string, value: unknown, what: string): never {
  throw failedPrecondition(`config.json: ${option} = ${JSON.stringify(value)} is not supported; ${what}`);
}

function readGpt2(field: FieldReader, architecture: string): ModelConfig {
  const hiddenSize = field.integer('n_embd', undefined, LIMITS.hiddenSize);
  const heads = field.integer('n_head', undefined, LIMITS.heads);
  if (hiddenSize % heads !== 0) throw invalidArgument(`config.json: n_embd (${hiddenSize}) is not a multiple of n_head (${heads})`);
  const activation = field.string('activation_function', 'gelu_new');
  if (activation !== 'gelu_new' && activation !== 'gelu_pytorch_tanh') unsupported('activation_function', activation, 'GPT-2 models must use gelu_new');
  if (field.has('add_cross_attention') && field.boolean('add_cross_attention', false)) unsupported('add_cross_attention', true, 'only decoder-only models load');
  if (!field.boolean('scale_attn_weights', true)) unsupported('scale_attn_weights', false, 'attention scores are always scaled by 1/sqrt(head_dim)');
  return {
    architecture, family: 'gpt2',
    vocabSize: field.integer('vocab_size', undefined, LIMITS.vocabSize),
    hiddenSize, layers: field.integer('n_layer', undefined, LIMITS.layers), heads, kvHeads: heads, headDim: hiddenSize / heads,
    intermediateSize: field.integer('n_inner', 4 * hiddenSize, LIMITS.intermediateSize),
    maxPositions: field.integer('n_positions', undefined, LIMITS.maxPositions),
    normEpsilon: field.positive('layer_norm_epsilon', 1e-5),
    ropeTheta: 0, ropeScaling: { type: 'default' },
    qkvBias: true, outputBias: true, mlpBias: true,
    tiedEmbeddings: field.boolean('tie_word_embeddings', true),
    scaleByInverseLayer: field.boolean('scale_attn_by_inverse_layer_idx', false),
  };
}

function readRopeScaling(field: FieldReader, maxPositions: number): RopeScaling {
  const raw = field.raw('rope_scaling');
  if (raw === undefined || raw === null) return { type: 'default' };
  if (!isRecord(raw)) throw invalidArgument(`config.json: 'rope_scaling' is ${JSON.stringify(raw)}; it must be an object or null`);
  const scaling = new FieldReader(raw, 'config.json rope_scaling');
  const type = scaling.has('rope_type') ? scaling.string('rope_type', '') : scaling.string('type', 'default');
  switch (type) {
    case 'default':
      return { type: 'default' };
    // Dynamic NTK scaling changes the frequencies only past max_position_embeddings, which no
    // sequence reaches here (it is the longest sequence the model takes).
    case 'dynamic':
      scaling.positive('factor');
      return { type: 'default' };
    case 'linear':
      return { type: 'linear', factor: scaling.positive('factor') };
    case 'llama3': {
      const lowFreqFactor = scaling.positive('low_freq_factor');
      const highFreqFactor = scaling.positive('high_freq_factor');
      if (highFreqFactor <= lowFreqFactor) throw invalidArgument(`config.json rope_scaling: high_freq_factor (${highFreqFactor}) must exceed low_freq_factor (${lowFreqFactor})`);
      return {
        type: 'llama3', factor: scaling.positive('factor'), lowFreqFactor, highFreqFactor,
        originalMaxPositions: scaling.integer('original_max_position_embeddings', maxPositions),
      };
    }
    default:
      return unsupported('rope_scaling.rope_type', type, 'use default, linear, dynamic or llama3');
  }
}

function readLlama(field: FieldReader, architecture: string): ModelConfig {
  const hiddenSize = field.integer('hidden_size', undefined, LIMITS.hiddenSize);
  const heads = field.integer('num_attention_heads', undefined, LIMITS.heads);
  const kvHeads = field.integer('num_key_value_heads', heads, LIMITS.heads);
  if (heads % kvHeads !== 0) throw invalidArgument(`config.json: num_attention_heads (${heads}) is not a multiple of num_key_value_heads (${kvHeads})`);
  if (!field.has('head_dim') && hiddenSize % heads !== 0) throw invalidArgument(`config.json: hidden_size (${hiddenSize}) is not a multiple of num_attention_heads (${heads})`);
  const headDim = field.integer('head_dim', hiddenSize / heads);
  if (headDim % 2 !== 0) throw invalidArgument(`config.json: head_dim is ${headDim}; rotary embeddings need an even head dimension`);
  const activation = field.string('hidden_act', 'silu');
  if (activation !== 'silu') unsupported('hidden_act', activation, `${architecture} models must use silu`);
  if (field.has('partial_rotary_factor') && field.raw('partial_rotary_factor') !== 1) unsupported('partial_rotary_factor', field.raw('partial_rotary_factor'), 'rotary embeddings cover the whole head');
  const maxPositions = field.integer('max_position_embeddings', undefined, LIMITS.maxPositions);
  const slidingWindow = field.raw('sliding_window');
  const windowUsed = architecture === 'Qwen2ForCausalLM' ? field.boolean('use_sliding_window', false) : true;
  if (windowUsed && typeof slidingWindow === 'number' && slidingWindow < maxPositions) {
    unsupported('sliding_window', slidingWindow, `attention covers the whole sequence (max_position_embeddings ${maxPositions})`);
  }
  const isQwen2 = architecture === 'Qwen2ForCausalLM';
  const attentionBias = isQwen2 || field.boolean('attention_bias', false);
  return {
    architecture, family: 'llama',
    vocabSize: field.integer('vocab_size', undefined, LIMITS.vocabSize),
    hiddenSize, layers: field.integer('num_hidden_layers', undefined, LIMITS.layers), heads, kvHeads, headDim,
    intermediateSize: field.integer('intermediate_size', undefined, LIMITS.intermediateSize),
    maxPositions,
    normEpsilon: field.positive('rms_norm_eps', 1e-6),
    ropeTheta: field.positive('rope_theta', 10000),
    ropeScaling: readRopeScaling(field, maxPositions),
    qkvBias: attentionBias,
    // Qwen2 has biases on q, k and v only; Llama's attention_bias puts one on o_proj too.
    outputBias: attentionBias && !isQwen2,
    mlpBias: field.boolean('mlp_bias', false),
    tiedEmbeddings: field.boolean('tie_word_embeddings', false),
    scaleByInverseLayer: false,
  };
}

/** The model described by config.json's bytes (see the file comment for what is refused). */
export function readModelConfig(bytes: Uint8Array): ModelConfig {
  const json = parseJsonObject('config.json', bytes);
  const architecture = architectureOf(json);
  const field = new FieldReader(json, 'config.json');
  let config: ModelConfig;
  if (GPT2_ARCHITECTURES.includes(architecture)) config = readGpt2(field, architecture);
  else if (LLAMA_ARCHITECTURES.includes(architecture)) config = readLlama(field, architecture);
  else throw failedPrecondition(`config.json: architecture '${architecture}' is not supported; the engine loads ${[...GPT2_ARCHITECTURES, ...LLAMA_ARCHITECTURES].join(', ')}`);
  if (config.headDim > MAX_HEAD_DIM) throw failedPrecondition(`config.json: the head dimension is ${config.headDim}; the attention kernel takes at most ${MAX_HEAD_DIM}`);
  return config;
}

/**
 * Token ids generation_config.json names as end of sequence (`eos_token_id`, a number or a
 * list), [] without the file; INVALID_ARGUMENT for ids outside the vocabulary.
 */
export function readEosTokenIds(bytes: Uint8Array | undefined, vocabSize: number): number[] {
  if (!bytes) return [];
  const raw = parseJsonObject('generation_config.json', bytes).eos_token_id;
  if (raw === undefined || raw === null) return [];
  const ids = Array.isArray(raw) ? raw : [raw];
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id < 0 || id >= vocabSize) {
      throw invalidArgument(`generation_config.json: eos_token_id ${JSON.stringify(id)} is not a token id below the vocabulary size ${vocabSize}`);
    }
  }
  return ids as number[];
}
