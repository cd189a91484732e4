/**
 * Byte-level BPE: a trainer that learns GPT-2-style merges from word counts, an encoder that
 * applies them (what the training data is tokenized with), and the Hugging Face `tokenizer.json`
 * that describes the same tokenizer to any Hugging Face loader.
 */
import { BYTE_SYMBOLS, baseTokenIds, decodeSymbols, preTokenize } from './byte-level.ts';

/** The end-of-text token, GPT-2's: it separates documents and is both BOS and EOS. */
export const END_OF_TEXT = '<|endoftext|>';

/** A trained byte-level BPE vocabulary: base bytes, then merged tokens, then `<|endoftext|>` last. */
export interface BpeVocabulary {
  /** Token strings by id, byte-level spelled (the space is 'Ġ'); the last is `END_OF_TEXT`. */
  tokens: string[];
  /** Merges in priority order, as pairs of token ids; merge r made token `256 + r` or an earlier one. */
  merges: Array<[number, number]>;
  /** Id of `END_OF_TEXT`. */
  endOfTextId: number;
}

/** Counts GPT-2 pre-tokens over the documents: the trainer's input. */
export function countWords(documents: Iterable<string>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const document of documents) {
    for (const word of preTokenize(document)) counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  return counts;
}

const pairKey = (left: number, right: number) => left * 65536 + right;

/**
 * Learns merges until the vocabulary (with `END_OF_TEXT`) has `vocabularySize` tokens, or no pair
 * occurs twice. Each step merges the most frequent adjacent pair (ties: the smaller pair of ids,
 * so the result depends only on the counts). Pair counts are updated only in the words the merge
 * touched, which keeps training a WordNet-sized corpus to seconds.
 */
export function trainBpe(wordCounts: Map<string, number>, vocabularySize: number): BpeVocabulary {
  if (!Number.isInteger(vocabularySize) || vocabularySize < 257 || vocabularySize > 65535) {
    throw new RangeError(`vocabularySize must be an integer in [257, 65535], got ${vocabularySize}`);
  }
  const tokens = [...BYTE_SYMBOLS];
  const tokenIds = new Map(tokens.map((token, id) => [token, id]));
  const merges: Array<[number, number]> = [];
  // Sorted so that the order words are met in, and so every tie, is independent of the Map's order.
  const entries = [...wordCounts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const words = entries.map(([word]) => baseTokenIds(word));
  const frequencies = entries.map(([, count]) => count);
  const pairCounts = new Map<number, number>();
  // Words that contained the pair when it was counted; stale members are skipped when merging.
  const pairWords = new Map<number, Set<number>>();
  const addPairs = (wordIndex: number, sign: 1 | -1) => {
    const symbols = words[wordIndex];
    const frequency = frequencies[wordIndex] * sign;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const key = pairKey(symbols[i], symbols[i + 1]);
      const count = (pairCounts.get(key) ?? 0) + frequency;
      if (count === 0) pairCounts.delete(key);
      else pairCounts.set(key, count);
      if (sign > 0) {
        let members = pairWords.get(key);
        if (!members) pairWords.set(key, (members = new Set()));
        members.add(wordIndex);
      }
    }
  };
  words.forEach((_, index) => addPairs(index, 1));

  while (tokens.length + 1 < vocabularySize) {
    let bestKey = -1;
    let bestCount = 1;
    for (const [key, count] of pairCounts) {
      if (count > bestCount || (count === bestCount && bestKey >= 0 && key < bestKey)) {
        bestKey = key;
        bestCount = count;
      }
    }
    if (bestKey < 0) break;
    const left = Math.floor(bestKey / 65536);
    const right = bestKey % 65536;
    const merged = tokens[left] + tokens[right];
    let mergedId = tokenIds.get(merged);
    if (mergedId === undefined) {
      mergedId = tokens.length;
      tokens.push(merged);
      tokenIds.set(merged, mergedId);
    }
    merges.push([left, right]);
    for (const wordIndex of pairWords.get(bestKey) ?? []) {
      const symbols = words[wordIndex];
      if (!containsPair(symbols, left, right)) continue;
      addPairs(wordIndex, -1);
      words[wordIndex] = applyMerge(symbols, left, right, mergedId);
      addPairs(wordIndex, 1);
    }
    pairCounts.delete(bestKey);
    pairWords.delete(bestKey);
  }
  tokens.push(END_OF_TEXT);
  return { tokens, merges, endOfTextId: tokens.length - 1 };
}

function containsPair(symbols: number[], left: number, right: number): boolean {
  for (let i = 0; i + 1 < symbols.length; i++) if (symbols[i] === left && symbols[i + 1] === right) return true;
  return false;
}

/** Replaces each non-overlapping (left, right), scanning left to right, by `merged`. */
function applyMerge(symbols: number[], left: number, right: number, merged: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < symbols.length; i++) {
    if (i + 1 < symbols.length && symbols[i] === left && symbols[i + 1] === right) {
      out.push(merged);
      i++;
    } else {
      out.push(symbols[i]);
    }
  }
  return out;
}

/**
 * Encodes text with a trained vocabulary exactly as Hugging Face's BPE model does: pre-tokenize,
 * then in each word repeatedly merge the adjacent pair whose merge came first. Words are cached,
 * so a corpus costs one BPE run per distinct word. `END_OF_TEXT` in the text is not special here:
 * documents are encoded one by one and joined with its id.
 */
export class BpeEncoder {
  private readonly ranks = new Map<number, { rank: number; result: number }>();
  private readonly cache = new Map<string, number[]>();
  private readonly tokens: readonly string[];

  constructor(vocabulary: BpeVocabulary) {
    this.tokens = vocabulary.tokens;
    const ids = new Map(vocabulary.tokens.map((token, id) => [token, id]));
    vocabulary.merges.forEach(([left, right], rank) => {
      const key = pairKey(left, right);
      if (!this.ranks.has(key)) this.ranks.set(key, { rank, result: ids.get(vocabulary.tokens[left] + vocabulary.tokens[right])! });
    });
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    for (const word of preTokenize(text)) {
      let wordIds = this.cache.get(word);
      if (!wordIds) this.cache.set(word, (wordIds = this.encodeWord(word)));
      for (const id of wordIds) ids.push(id);
    }
    return ids;
  }

  decode(ids: readonly number[]): string {
    return decodeSymbols(ids.map((id) => {
      const token = this.tokens[id];
      if (token === undefined) throw new RangeError(`token id ${id} is outside the vocabulary of ${this.tokens.length}`);
      return token === END_OF_TEXT ? '' : token;
    }));
  }

  private encodeWord(word: string): number[] {
    let symbols = baseTokenIds(word);
    for (;;) {
      let best: { rank: number; result: number } | undefined;
      let bestAt = -1;
      for (let i = 0; i + 1 < symbols.length; i++) {
        const merge = this.ranks.get(pairKey(symbols[i], symbols[i + 1]));
        if (merge && (!best || merge.rank < best.rank)) {
          best = merge;
          bestAt = i;
        }
      }
      if (!best) return symbols;
      symbols = applyMerge(symbols, symbols[bestAt], symbols[bestAt + 1], best.result);
    }
  }
}

/**
 * The Hugging Face `tokenizer.json` of the vocabulary: GPT-2's layout (ByteLevel pre-tokenizer,
 * post-processor and decoder around a BPE model, no normalizer, `<|endoftext|>` an added special
 * token), so `transformers`, `tokenizers` and `@huggingface/tokenizers` all load it.
 */
export function huggingFaceTokenizerJson(vocabulary: BpeVocabulary): object {
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{
      id: vocabulary.endOfTextId, content: END_OF_TEXT,
      single_word: false, lstrip: false, rstrip: false, normalized: true, special: true,
    }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: { ...byteLevel, trim_offsets: false },
    decoder: byteLevel,
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(vocabulary.tokens.map((token, id) => [token, id])),
      merges: vocabulary.merges.map(([left, right]) => `${vocabulary.tokens[left]} ${vocabulary.tokens[right]}`),
    },
  };
}

/** `tokenizer_config.json`: GPT-2's, with `<|endoftext|>` as BOS, EOS and UNK and no space clean-up. */
export function huggingFaceTokenizerConfig(modelMaxLength: number): object {
  return {
    add_bos_token: false,
    add_prefix_space: false,
    bos_token: END_OF_TEXT,
    eos_token: END_OF_TEXT,
    unk_token: END_OF_TEXT,
    // Clean-up would turn " ." into "." and break decode(encode(text)) === text.
    clean_up_tokenization_spaces: false,
    errors: 'replace',
    model_max_length: modelMaxLength,
    tokenizer_class: 'GPT2Tokenizer',
  };
}

/** Reads a vocabulary back from the `tokenizer.json` written by `huggingFaceTokenizerJson`. */
export function vocabularyFromTokenizerJson(json: {
  model: { vocab: Record<string, number>; merges: Array<string | [string, string]> };
  added_tokens: Array<{ id: number; content: string }>;
}): BpeVocabulary {
  const tokens: string[] = [];
  for (const [token, id] of Object.entries(json.model.vocab)) tokens[id] = token;
  for (const added of json.added_tokens) tokens[added.id] = added.content;
  const ids = new Map(tokens.map((token, id) => [token, id]));
  const merges = json.model.merges.map((merge): [number, number] => {
    const [left, right] = typeof merge === 'string' ? merge.split(' ') : merge;
    return [ids.get(left)!, ids.get(right)!];
  });
  const endOfTextId = ids.get(END_OF_TEXT);
  if (endOfTextId === undefined) throw new Error(`tokenizer.json has no ${END_OF_TEXT} token`);
  return { tokens, merges, endOfTextId };
}
