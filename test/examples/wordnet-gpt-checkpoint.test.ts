/**
 * The committed WordNet GPT checkpoint: its files are laid out as Hugging Face's GPT2LMHeadModel
 * saves them (names, shapes, dtypes, config), its tokenizer loads in @huggingface/tokenizers and
 * round-trips text, and the weights, run by the trainer's own forward pass, score held-out
 * glosses far better than chance and continue "dog:" in English words.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import { WORDNET_GPT_EXAMPLE } from '../../services/examples/index.ts';
import { BpeEncoder, END_OF_TEXT } from '../../services/examples/wordnet-gpt/bpe.ts';
import { readCheckpoint } from '../../services/examples/wordnet-gpt/checkpoint.ts';
import { readWordNetDocuments, wordNetVocabulary } from '../../services/examples/wordnet-gpt/corpus.ts';
import { generateText } from '../../services/examples/wordnet-gpt/generate.ts';
import { Gpt2Model } from '../../services/examples/wordnet-gpt/gpt2.ts';

const directory = WORDNET_GPT_EXAMPLE.checkpointDir;
const readJson = (name: string) => JSON.parse(readFileSync(join(directory, name), 'utf8'));

/** GPT2LMHeadModel's state dict as save_pretrained writes it for a tied lm_head: name → shape. */
function huggingFaceGpt2Tensors(vocabulary: number, positions: number, width: number, layers: number): Map<string, number[]> {
  const tensors = new Map<string, number[]>([
    ['transformer.wte.weight', [vocabulary, width]],
    ['transformer.wpe.weight', [positions, width]],
    ['transformer.ln_f.weight', [width]],
    ['transformer.ln_f.bias', [width]],
  ]);
  for (let i = 0; i < layers; i++) {
    const prefix = `transformer.h.${i}`;
    for (const norm of ['ln_1', 'ln_2']) {
      tensors.set(`${prefix}.${norm}.weight`, [width]);
      tensors.set(`${prefix}.${norm}.bias`, [width]);
    }
    // Conv1D stores [in, out].
    tensors.set(`${prefix}.attn.c_attn.weight`, [width, 3 * width]);
    tensors.set(`${prefix}.attn.c_attn.bias`, [3 * width]);
    tensors.set(`${prefix}.attn.c_proj.weight`, [width, width]);
    tensors.set(`${prefix}.attn.c_proj.bias`, [width]);
    tensors.set(`${prefix}.mlp.c_fc.weight`, [width, 4 * width]);
    tensors.set(`${prefix}.mlp.c_fc.bias`, [4 * width]);
    tensors.set(`${prefix}.mlp.c_proj.weight`, [4 * width, width]);
    tensors.set(`${prefix}.mlp.c_proj.bias`, [width]);
  }
  return tensors;
}

describe('committed WordNet GPT checkpoint', () => {
  const config = readJson('config.json');
  let documents: string[];
  let model: Gpt2Model;
  let encoder: BpeEncoder;
  let tokenizer: Tokenizer;
  let endOfTextId: number;

  beforeAll(() => {
    documents = readWordNetDocuments();
    const checkpoint = readCheckpoint(directory);
    model = new Gpt2Model(checkpoint.config, checkpoint.parameters);
    encoder = new BpeEncoder(checkpoint.vocabulary);
    endOfTextId = checkpoint.vocabulary.endOfTextId;
    tokenizer = new Tokenizer(readJson('tokenizer.json'), readJson('tokenizer_config.json'));
  });

  it('has GPT-2\'s config.json: GPT2LMHeadModel, gelu_new, tied embeddings, <|endoftext|> as BOS and EOS', () => {
    expect(config).toMatchObject({
      architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', activation_function: 'gelu_new',
      vocab_size: 2048, n_positions: 128, n_embd: 128, n_layer: 2, n_head: 4, n_inner: null,
      layer_norm_epsilon: 1e-5, tie_word_embeddings: true, bos_token_id: 2047, eos_token_id: 2047,
    });
    expect(readJson('generation_config.json')).toMatchObject({ bos_token_id: 2047, eos_token_id: 2047 });
    expect(readJson('tokenizer_config.json')).toMatchObject({
      bos_token: END_OF_TEXT, eos_token: END_OF_TEXT, tokenizer_class: 'GPT2Tokenizer', clean_up_tokenization_spaces: false,
    });
  });

  it('stores exactly GPT2LMHeadModel\'s tensors, F32, contiguous, lm_head left to the tie, in under 4 MB', () => {
    const bytes = readFileSync(join(directory, 'model.safetensors'));
    expect(statSync(join(directory, 'model.safetensors')).size).toBeLessThan(4 * 1024 * 1024);
    const headerLength = Number(bytes.readBigUInt64LE(0));
    expect((8 + headerLength) % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + headerLength).toString('utf8'));
    const { __metadata__: metadata, ...tensors } = header;
    expect(metadata).toMatchObject({ format: 'pt', trained_by: 'node services/examples/wordnet-gpt/train.ts --steps 1500', seed: '1234' });
    expect(Number(metadata.validation_loss)).toBeLessThan(5);
    const expected = huggingFaceGpt2Tensors(config.vocab_size, config.n_positions, config.n_embd, config.n_layer);
    expect(Object.keys(tensors).sort()).toEqual([...expected.keys()].sort());
    let end = 0;
    for (const [name, { dtype, shape, data_offsets: [begin, stop] }] of Object.entries(tensors) as Array<[string, { dtype: string; shape: number[]; data_offsets: [number, number] }]>) {
      expect(dtype, name).toBe('F32');
      expect(shape, name).toEqual(expected.get(name));
      expect(begin, name).toBe(end);
      expect(stop - begin, name).toBe(4 * shape.reduce((product, dimension) => product * dimension, 1));
      end = stop;
    }
    expect(8 + headerLength + end).toBe(bytes.length);
  });

  it('has a tokenizer.json that @huggingface/tokenizers loads and that round-trips glosses and any script', () => {
    expect(tokenizer.get_vocab(true).size).toBe(config.vocab_size);
    for (const text of [...documents.slice(0, 50), 'naïve café — 東京 🙂 “quoted”\ttab\nnewline']) {
      const { ids } = tokenizer.encode(text);
      expect(ids).toEqual(encoder.encode(text));
      expect(tokenizer.decode(ids)).toBe(text);
    }
    expect(tokenizer.encode(END_OF_TEXT).ids).toEqual([endOfTextId]);
  });

  it('predicts glosses far better than chance (ln 2048 = 7.6 nats a token)', () => {
    // The committed training split held out a seeded 2%; these are scored whether seen or not.
    const sample = documents.filter((_, index) => index % 4000 === 7);
    let lossSum = 0, tokens = 0;
    for (const document of sample) {
      const ids = [...encoder.encode(document), endOfTextId].slice(0, config.n_positions + 1);
      const loss = model.loss(ids.slice(0, -1), ids.slice(1), 1, ids.length - 1);
      lossSum += loss * (ids.length - 1);
      tokens += ids.length - 1;
    }
    expect(lossSum / tokens).toBeLessThan(5);
  });

  it('continues "dog:" greedily in English: most of its words occur in WordNet', () => {
    const text = generateText(model, encoder, WORDNET_GPT_EXAMPLE.samplePrompt, { maxNewTokens: 32, stopTokenId: endOfTextId });
    const words = text.toLowerCase().match(/[a-z]+/g) ?? [];
    expect(words.length, text).toBeGreaterThanOrEqual(5);
    const known = wordNetVocabulary(documents);
    const englishShare = words.filter((word) => known.has(word)).length / words.length;
    expect(englishShare, text).toBeGreaterThanOrEqual(0.8);
    // Greedy decoding is deterministic: the same prompt gives the same text.
    expect(generateText(model, encoder, 'dog:', { maxNewTokens: 32, stopTokenId: endOfTextId })).toBe(text);
  });

  it('describes itself for the CLI: name, checkpoint, lineage folder', () => {
    expect(WORDNET_GPT_EXAMPLE.modelName).toBe('wordnet-gpt');
    expect(WORDNET_GPT_EXAMPLE.sourceDir).toBe(join(directory, '..'));
    const parameters = model.parameters.length;
    expect(WORDNET_GPT_EXAMPLE.description).toContain(`${(parameters / 1e6).toFixed(2)}M parameters`);
    expect(WORDNET_GPT_EXAMPLE.description).toContain(`${config.n_layer} layers, ${config.n_embd} wide`);
  });
});
