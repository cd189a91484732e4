/**
 * TfIdfVectorizer (opset 9) on the host: n-gram counts of integer token rows, weighted as TF,
 * IDF or TFIDF. Its input is usually a model input (token ids), which the run reads back first
 * (compiler/segments.ts); the output is a host value, uploaded where a GPU step reads it.
 *
 * The n-gram pool is a trie over token ids, so every start position walks at most
 * max_gram_length nodes. Counting follows onnxruntime's kernel: for each skip distance 1 to
 * max_skip_count + 1, every start position extends its n-gram one token at a time (step: the
 * distance) while the pool has that prefix, counting each pool n-gram of at least
 * min_gram_length it reaches; unigrams do not depend on the distance, so they count in the first
 * pass only. Rows shorter than an n-gram contribute nothing to it.
 */
import type { AttributeProto, HostTensor, NodeProto } from '../../onnx/model.ts';
import { AttributeProto_AttributeType as AttributeType } from '../../protocol/generated/onnx/onnx.ts';
import { numberView } from '../tensor/index.ts';
import { attributeOf, enumAttribute, intAttribute, intsAttribute, invalidNode, unsupported } from './attributes.ts';
import type { CpuContext, OperatorSpec } from './contract.ts';
import { reserve } from './cpu-indexing.ts';
import { requiredValue } from './parameters.ts';

const MODES = ['TF', 'IDF', 'TFIDF'] as const;

interface TrieNode {
  readonly children: Map<number, TrieNode>;
  /** The pool n-gram ending here (its index in the pool), or -1 for a prefix only. */
  ngram: number;
}

interface Vectorizer {
  readonly root: TrieNode;
  readonly minGram: number;
  readonly maxGram: number;
  readonly maxSkip: number;
  readonly mode: (typeof MODES)[number];
  /** Output position of each pool n-gram. */
  readonly ngramIndexes: readonly number[];
  readonly weights: readonly number[] | undefined;
  readonly width: number;
}

function floats(attribute: AttributeProto | undefined): number[] | undefined {
  return attribute?.type === AttributeType.FLOATS ? attribute.floats : undefined;
}

/** The attributes, checked: the pool splits into whole n-grams, every n-gram has an output position. */
function vectorizerOf(node: NodeProto): Vectorizer {
  if ((attributeOf(node, 'pool_strings')?.strings.length ?? 0) > 0) throw unsupported(node, 'pool_strings (string tokens)');
  const minGram = intAttribute(node, 'min_gram_length', 1);
  const maxGram = intAttribute(node, 'max_gram_length', 1);
  const maxSkip = intAttribute(node, 'max_skip_count', 0);
  if (minGram < 1 || maxGram < minGram) throw invalidNode(node, `min_gram_length ${minGram} and max_gram_length ${maxGram} need 1 <= min <= max`);
  if (maxSkip < 0) throw invalidNode(node, `max_skip_count ${maxSkip} is negative`);
  const mode = enumAttribute(node, 'mode', MODES, 'TF');
  const pool = intsAttribute(node, 'pool_int64s') ?? [];
  const counts = intsAttribute(node, 'ngram_counts') ?? [];
  const ngramIndexes = intsAttribute(node, 'ngram_indexes') ?? [];
  const weights = floats(attributeOf(node, 'weights'));
  const root: TrieNode = { children: new Map(), ngram: -1 };
  let ngram = 0;
  for (let group = 0; group < counts.length; group++) {
    const size = group + 1;
    const start = counts[group];
    const end = group + 1 < counts.length ? counts[group + 1] : pool.length;
    if (start < 0 || end > pool.length || end < start || (end - start) % size !== 0) {
      throw invalidNode(node, `ngram_counts[${group}] = ${start}: pool_int64s[${start}:${end}] is not a whole number of ${size}-grams`);
    }
    for (let at = start; at < end; at += size, ngram++) {
      let trie = root;
      for (let offset = 0; offset < size; offset++) {
        const token = pool[at + offset];
        let child = trie.children.get(token);
        if (!child) trie.children.set(token, (child = { children: new Map(), ngram: -1 }));
        trie = child;
      }
      trie.ngram = ngram;
    }
  }
  if (ngramIndexes.length !== ngram) throw invalidNode(node, `ngram_indexes has ${ngramIndexes.length} entries for ${ngram} n-grams in the pool`);
  if (ngramIndexes.some((index) => index < 0)) throw invalidNode(node, 'ngram_indexes holds a negative index');
  const width = ngramIndexes.length === 0 ? 0 : Math.max(...ngramIndexes) + 1;
  if (weights && weights.length > 0 && weights.length !== ngram) throw invalidNode(node, `weights has ${weights.length} entries for ${ngram} n-grams in the pool`);
  return { root, minGram, maxGram, maxSkip, mode, ngramIndexes, weights: weights && weights.length > 0 ? weights : undefined, width };
}

/** Counts of each pool n-gram for one row of tokens. */
function countRow(vectorizer: Vectorizer, tokens: ArrayLike<number>, start: number, length: number, counts: Float64Array): void {
  let smallest = vectorizer.minGram;
  for (let distance = 1; distance <= vectorizer.maxSkip + 1; distance++) {
    for (let first = 0; first < length; first++) {
      // The smallest n-gram counted must fit in the row from here.
      if (first + distance * (smallest - 1) >= length) break;
      let trie = vectorizer.root;
      for (let size = 1, at = first; size <= vectorizer.maxGram && at < length; size++, at += distance) {
        const next = trie.children.get(tokens[start + at]);
        if (!next) break;
        if (size >= smallest && next.ngram >= 0) counts[next.ngram]++;
        trie = next;
      }
    }
    if (smallest === 1 && ++smallest > vectorizer.maxGram) break;
  }
}

function cpuTfIdf(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const { node } = context;
  if (input.shape.length !== 1 && input.shape.length !== 2) throw invalidNode(node, `input has shape [${input.shape}]; it must be [C] or [N, C]`);
  const vectorizer = vectorizerOf(node);
  const rows = input.shape.length === 2 ? input.shape[0] : 1;
  const length = input.shape[input.shape.length - 1];
  const shape = input.shape.length === 2 ? [rows, vectorizer.width] : [vectorizer.width];
  reserve(context, shape, 'FP32');
  const tokens = numberView(input);
  const { weights, mode, width, ngramIndexes } = vectorizer;
  const out = new Float32Array(rows * width);
  const counts = new Float64Array(ngramIndexes.length);
  for (let row = 0; row < rows; row++) {
    counts.fill(0);
    countRow(vectorizer, tokens, row * length, length, counts);
    // The i-th weight belongs to the i-th pool n-gram, written at its output position.
    for (let ngram = 0; ngram < counts.length; ngram++) {
      const count = counts[ngram];
      const weight = weights ? weights[ngram] : 1;
      out[row * width + ngramIndexes[ngram]] += mode === 'TF' ? count : mode === 'IDF' ? (count > 0 ? weight : 0) : count * weight;
    }
  }
  return [{ datatype: 'FP32', shape, data: out }];
}

export const tfIdfVectorizerSpec: OperatorSpec = {
  attributes: ['max_gram_length', 'min_gram_length', 'max_skip_count', 'mode', 'ngram_counts', 'ngram_indexes', 'pool_int64s', 'pool_strings', 'weights'],
  inputs: [1, 1],
  types: ({ node, inputTypes }) => {
    const type = inputTypes[0];
    if (type !== undefined && type !== 'INT32' && type !== 'INT64') throw unsupported(node, `${type} input (token ids must be INT32 or INT64)`);
    return ['FP32'];
  },
  validate(node) {
    vectorizerOf(node);
  },
  cpu: cpuTfIdf,
};
