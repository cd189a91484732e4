/**
 * The Hugging Face checkpoint directory of the model: what `GPT2LMHeadModel.from_pretrained` and
 * `AutoTokenizer.from_pretrained` read, and what the executor and router load.
 *
 *   config.json             GPT-2's config (model_type gpt2, GPT2LMHeadModel, tied embeddings)
 *   model.safetensors       F32 tensors under GPT2LMHeadModel's names, lm_head omitted (tied)
 *   tokenizer.json          the byte-level BPE tokenizer
 *   tokenizer_config.json   GPT2Tokenizer settings, <|endoftext|> as BOS/EOS/UNK
 *   generation_config.json  BOS/EOS ids
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { huggingFaceTokenizerConfig, huggingFaceTokenizerJson, vocabularyFromTokenizerJson, type BpeVocabulary } from './bpe.ts';
import { decodeSafetensors, encodeSafetensors } from './safetensors.ts';
import { parameterCount, tensorLayout, type Gpt2Config } from './weights.ts';

/** The transformers version whose config.json layout the files follow. */
const TRANSFORMERS_VERSION = '4.46.0';

export interface Checkpoint {
  config: Gpt2Config;
  parameters: Float32Array;
  vocabulary: BpeVocabulary;
}

/** GPT-2's config.json for the architecture; dropout is 0 because training used none. */
function huggingFaceConfig(config: Gpt2Config, endOfTextId: number): object {
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    activation_function: 'gelu_new',
    vocab_size: config.vocab_size,
    n_positions: config.n_positions,
    n_ctx: config.n_positions,
    n_embd: config.n_embd,
    n_layer: config.n_layer,
    n_head: config.n_head,
    n_inner: null,
    layer_norm_epsilon: config.layer_norm_epsilon,
    initializer_range: 0.02,
    attn_pdrop: 0,
    embd_pdrop: 0,
    resid_pdrop: 0,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: true,
    bos_token_id: endOfTextId,
    eos_token_id: endOfTextId,
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
    use_cache: true,
  };
}

const writeJson = (path: string, value: unknown) => writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`);

/** Writes the five files into `directory` (created if missing). `metadata` goes into the safetensors header. */
export function writeCheckpoint(directory: string, checkpoint: Checkpoint, metadata: Record<string, string>): void {
  const { config, parameters, vocabulary } = checkpoint;
  if (vocabulary.tokens.length !== config.vocab_size) {
    throw new RangeError(`vocabulary has ${vocabulary.tokens.length} tokens, config.vocab_size is ${config.vocab_size}`);
  }
  mkdirSync(directory, { recursive: true });
  const tensors = tensorLayout(config).map((slot) => ({
    name: slot.name, shape: slot.shape, data: parameters.subarray(slot.offset, slot.offset + slot.size),
  }));
  writeFileSync(join(directory, 'model.safetensors'), encodeSafetensors(tensors, metadata));
  writeJson(join(directory, 'config.json'), huggingFaceConfig(config, vocabulary.endOfTextId));
  writeJson(join(directory, 'tokenizer.json'), huggingFaceTokenizerJson(vocabulary));
  writeJson(join(directory, 'tokenizer_config.json'), huggingFaceTokenizerConfig(config.n_positions));
  writeJson(join(directory, 'generation_config.json'), {
    _from_model_config: true,
    bos_token_id: vocabulary.endOfTextId,
    eos_token_id: vocabulary.endOfTextId,
    max_length: config.n_positions,
    transformers_version: TRANSFORMERS_VERSION,
  });
}

/** Reads a checkpoint directory back: the config, the flat parameters in layout order, the vocabulary. */
export function readCheckpoint(directory: string): Checkpoint & { metadata: Record<string, string> } {
  const json = JSON.parse(readFileSync(join(directory, 'config.json'), 'utf8')) as Gpt2Config & { model_type?: string };
  if (json.model_type !== 'gpt2') throw new TypeError(`${directory}/config.json has model_type ${json.model_type}, expected gpt2`);
  const config: Gpt2Config = {
    vocab_size: json.vocab_size, n_positions: json.n_positions, n_embd: json.n_embd,
    n_layer: json.n_layer, n_head: json.n_head, layer_norm_epsilon: json.layer_norm_epsilon,
  };
  const { tensors, metadata } = decodeSafetensors(readFileSync(join(directory, 'model.safetensors')));
  const byName = new Map(tensors.map((tensor) => [tensor.name, tensor]));
  const parameters = new Float32Array(parameterCount(config));
  for (const slot of tensorLayout(config)) {
    const tensor = byName.get(slot.name);
    if (!tensor) throw new RangeError(`${directory}/model.safetensors has no tensor ${slot.name}`);
    if (tensor.shape.join() !== slot.shape.join()) {
      throw new RangeError(`tensor ${slot.name} has shape [${tensor.shape}], the config needs [${slot.shape}]`);
    }
    parameters.set(tensor.data, slot.offset);
  }
  const vocabulary = vocabularyFromTokenizerJson(JSON.parse(readFileSync(join(directory, 'tokenizer.json'), 'utf8')));
  return { config, parameters, vocabulary, metadata };
}
