/**
 * A checkpoint's tensors, found by their Hugging Face names and laid out the way the kernels
 * read them: every projection as a [inputs, outputs] matrix (GPT-2's Conv1D already is one;
 * Llama's Linear weights [out, in] are transposed), q, k and v side by side in one matrix (one
 * GEMM), f32 on the host. Every tensor must have exactly the shape the config implies
 * (INVALID_ARGUMENT naming it otherwise); a tensor the architecture does not use is refused
 * FAILED_PRECONDITION, since it would mean a variant the engine does not implement.
 */
import { failedPrecondition, invalidArgument } from '../../domain/index.ts';
import type { ModelConfig } from './model-config.ts';
import { tensorAsFloat32, type SafetensorsFile, type TensorEntry } from './safetensors.ts';

/** A projection's weights: `inputs` rows of `outputs` values (out = in @ matrix). */
export interface Matrix {
  readonly inputs: number;
  readonly outputs: number;
  readonly data: Float32Array;
}

export interface LayerWeights {
  readonly norm1Weight: Float32Array;
  readonly norm1Bias?: Float32Array;
  /** [hidden, qDim + 2 * kvDim]: q, then k, then v columns. */
  readonly qkv: Matrix;
  readonly qkvBias?: Float32Array;
  /** [qDim, hidden]. */
  readonly output: Matrix;
  readonly outputBias?: Float32Array;
  readonly norm2Weight: Float32Array;
  readonly norm2Bias?: Float32Array;
  /** GPT-2: c_fc [hidden, inter]. Llama: up_proj [hidden, inter], with gate_proj beside it. */
  readonly up: Matrix;
  readonly upBias?: Float32Array;
  readonly gate?: Matrix;
  readonly gateBias?: Float32Array;
  /** [inter, hidden]. */
  readonly down: Matrix;
  readonly downBias?: Float32Array;
}

export interface HostWeights {
  /** [vocab, hidden] token embedding rows; undefined when tied (read from lmHead). */
  readonly embedding?: Float32Array;
  /** GPT-2: [maxPositions, hidden] learned positions. */
  readonly positions?: Float32Array;
  readonly layers: readonly LayerWeights[];
  readonly finalNormWeight: Float32Array;
  readonly finalNormBias?: Float32Array;
  /** [hidden, vocab]. */
  readonly lmHead: Matrix;
}

/** Buffers some exports carry that hold no weights (GPT-2's causal mask, Llama's rotary table). */
const IGNORED = [/^(transformer\.)?h\.\d+\.attn\.(masked_)?bias$/, /\.rotary_emb\.inv_freq$/];

/** Tensor lookup across the checkpoint's files, remembering what was used. */
class TensorSource {
  private readonly used = new Set<string>();

  private readonly entries: ReadonlyMap<string, { file: SafetensorsFile; entry: TensorEntry }>;

  constructor(entries: ReadonlyMap<string, { file: SafetensorsFile; entry: TensorEntry }>) {
    this.entries = entries;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The tensor `name` as f32, checked to have `shape`. */
  take(name: string, shape: readonly number[]): Float32Array {
    const found = this.entries.get(name);
    if (!found) throw invalidArgument(`the checkpoint has no tensor '${name}' (shape [${shape}])`);
    const actual = found.entry.shape;
    if (actual.length !== shape.length || actual.some((dim, axis) => dim !== shape[axis])) {
      throw invalidArgument(`tensor '${name}' in '${found.file.path}' has shape [${actual.join(', ')}]; the config implies [${shape.join(', ')}]`);
    }
    this.used.add(name);
    return tensorAsFloat32(found.file, found.entry);
  }

  takeIf(present: boolean, name: string, shape: readonly number[]): Float32Array | undefined {
    return present ? this.take(name, shape) : undefined;
  }

  /** Refuses any tensor neither taken nor a known weightless buffer. */
  checkAllUsed(architecture: string): void {
    for (const name of this.entries.keys()) {
      if (!this.used.has(name) && !IGNORED.some((pattern) => pattern.test(name))) {
        throw failedPrecondition(`the checkpoint's tensor '${name}' is not part of ${architecture} as the engine implements it; the model is refused rather than run without it`);
      }
    }
  }
}

/** `weight` [rows, cols] transposed into a [cols, rows] matrix. */
function transposed(weight: Float32Array, rows: number, cols: number): Matrix {
  const data = new Float32Array(rows * cols);
  for (let row = 0; row < rows; row++) {
    for (let col = 0; col < cols; col++) data[col * rows + row] = weight[row * cols + col];
  }
  return { inputs: cols, outputs: rows, data };
}

/** Matrices with the same inputs side by side: columns of the first, then the second, ... */
function sideBySide(parts: readonly Matrix[]): Matrix {
  const inputs = parts[0].inputs;
  const outputs = parts.reduce((total, part) => total + part.outputs, 0);
  const data = new Float32Array(inputs * outputs);
  for (let row = 0; row < inputs; row++) {
    let column = 0;
    for (const part of parts) {
      data.set(part.data.subarray(row * part.outputs, (row + 1) * part.outputs), row * outputs + column);
      column += part.outputs;
    }
  }
  return { inputs, outputs, data };
}

function concatenated(parts: ReadonlyArray<Float32Array | undefined>): Float32Array | undefined {
  if (parts.some((part) => part === undefined)) return undefined;
  const whole = new Float32Array(parts.reduce((total, part) => total + part!.length, 0));
  let offset = 0;
  for (const part of parts) {
    whole.set(part!, offset);
    offset += part!.length;
  }
  return whole;
}

/**
 * The embedding and lm_head: with tie_word_embeddings the head is the embedding (as Hugging Face
 * ties them, a stored lm_head.weight is then ignored) and the embedding is read from it.
 */
function languageModelHead(config: ModelConfig, tensors: TensorSource, embedding: Float32Array): Pick<HostWeights, 'embedding' | 'lmHead'> {
  const { vocabSize, hiddenSize } = config;
  const stored = tensors.has('lm_head.weight') || !config.tiedEmbeddings ? tensors.take('lm_head.weight', [vocabSize, hiddenSize]) : undefined;
  if (config.tiedEmbeddings) return { lmHead: transposed(embedding, vocabSize, hiddenSize) };
  return { embedding, lmHead: transposed(stored!, vocabSize, hiddenSize) };
}

function gpt2Weights(config: ModelConfig, tensors: TensorSource): HostWeights {
  const { hiddenSize: h, vocabSize, intermediateSize: inter } = config;
  const prefix = tensors.has('transformer.wte.weight') ? 'transformer.' : '';
  const matrix = (name: string, inputs: number, outputs: number): Matrix => ({ inputs, outputs, data: tensors.take(name, [inputs, outputs]) });
  const layers: LayerWeights[] = [];
  for (let index = 0; index < config.layers; index++) {
    const layer = `${prefix}h.${index}`;
    layers.push({
      norm1Weight: tensors.take(`${layer}.ln_1.weight`, [h]), norm1Bias: tensors.take(`${layer}.ln_1.bias`, [h]),
      qkv: matrix(`${layer}.attn.c_attn.weight`, h, 3 * h), qkvBias: tensors.take(`${layer}.attn.c_attn.bias`, [3 * h]),
      output: matrix(`${layer}.attn.c_proj.weight`, h, h), outputBias: tensors.take(`${layer}.attn.c_proj.bias`, [h]),
      norm2Weight: tensors.take(`${layer}.ln_2.weight`, [h]), norm2Bias: tensors.take(`${layer}.ln_2.bias`, [h]),
      up: matrix(`${layer}.mlp.c_fc.weight`, h, inter), upBias: tensors.take(`${layer}.mlp.c_fc.bias`, [inter]),
      down: matrix(`${layer}.mlp.c_proj.weight`, inter, h), downBias: tensors.take(`${layer}.mlp.c_proj.bias`, [h]),
    });
  }
  const embedding = tensors.take(`${prefix}wte.weight`, [vocabSize, h]);
  return {
    ...languageModelHead(config, tensors, embedding),
    positions: tensors.take(`${prefix}wpe.weight`, [config.maxPositions, h]),
    layers,
    finalNormWeight: tensors.take(`${prefix}ln_f.weight`, [h]), finalNormBias: tensors.take(`${prefix}ln_f.bias`, [h]),
  };
}

function llamaWeights(config: ModelConfig, tensors: TensorSource): HostWeights {
  const { hiddenSize: h, vocabSize, intermediateSize: inter, headDim } = config;
  const qDim = config.heads * headDim;
  const kvDim = config.kvHeads * headDim;
  const linear = (name: string, inputs: number, outputs: number) => transposed(tensors.take(name, [outputs, inputs]), outputs, inputs);
  const layers: LayerWeights[] = [];
  for (let index = 0; index < config.layers; index++) {
    const layer = `model.layers.${index}`;
    const attention = `${layer}.self_attn`;
    const mlp = `${layer}.mlp`;
    layers.push({
      norm1Weight: tensors.take(`${layer}.input_layernorm.weight`, [h]),
      qkv: sideBySide([linear(`${attention}.q_proj.weight`, h, qDim), linear(`${attention}.k_proj.weight`, h, kvDim), linear(`${attention}.v_proj.weight`, h, kvDim)]),
      qkvBias: config.qkvBias
        ? concatenated([tensors.take(`${attention}.q_proj.bias`, [qDim]), tensors.take(`${attention}.k_proj.bias`, [kvDim]), tensors.take(`${attention}.v_proj.bias`, [kvDim])])
        : undefined,
      output: linear(`${attention}.o_proj.weight`, qDim, h),
      outputBias: tensors.takeIf(config.outputBias, `${attention}.o_proj.bias`, [h]),
      norm2Weight: tensors.take(`${layer}.post_attention_layernorm.weight`, [h]),
      gate: linear(`${mlp}.gate_proj.weight`, h, inter), gateBias: tensors.takeIf(config.mlpBias, `${mlp}.gate_proj.bias`, [inter]),
      up: linear(`${mlp}.up_proj.weight`, h, inter), upBias: tensors.takeIf(config.mlpBias, `${mlp}.up_proj.bias`, [inter]),
      down: linear(`${mlp}.down_proj.weight`, inter, h), downBias: tensors.takeIf(config.mlpBias, `${mlp}.down_proj.bias`, [h]),
    });
  }
  return {
    ...languageModelHead(config, tensors, tensors.take('model.embed_tokens.weight', [vocabSize, h])),
    layers,
    finalNormWeight: tensors.take('model.norm.weight', [h]),
  };
}

/** The weights of `config`'s model from the tensors of its safetensors files (see the file comment). */
export function hostWeightsOf(config: ModelConfig, entries: ReadonlyMap<string, { file: SafetensorsFile; entry: TensorEntry }>): HostWeights {
  const tensors = new TensorSource(entries);
  const weights = config.family === 'gpt2' ? gpt2Weights(config, tensors) : llamaWeights(config, tensors);
  tensors.checkAllUsed(config.architecture);
  return weights;
}
