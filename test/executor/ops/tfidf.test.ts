/**
 * TfIdfVectorizer against onnxruntime on fresh random token rows: TF / IDF / TFIDF, 1-D and
 * batched input, INT32 and INT64 tokens, unigrams to trigrams with skips, a pool whose output
 * positions are permuted, and pool n-grams the rows cannot hold; malformed pools are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { floats, type AttributeValue } from '../../../services/onnx/builder.ts';
import { checkOneNode, compileError, buildOneNodeModel } from '../numerics/one-node.ts';
import { randomIntegers } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** A pool of `unigrams` 1-grams, `bigrams` 2-grams and `trigrams` 3-grams over tokens 0..5 (fresh, distinct within each size). */
function randomPool(unigrams: number, bigrams: number, trigrams: number) {
  const distinct = (size: number, count: number) => {
    const seen = new Set<string>();
    while (seen.size < count) seen.add(Array.from({ length: size }, () => Math.floor(Math.random() * 6)).join(','));
    return [...seen].flatMap((key) => key.split(',').map(Number));
  };
  const pool = [...distinct(1, unigrams), ...distinct(2, bigrams), ...distinct(3, trigrams)];
  const counts = [0, unigrams, unigrams + 2 * bigrams];
  const total = unigrams + bigrams + trigrams;
  // Output positions: a random permutation of the n-grams.
  const indexes = Array.from({ length: total }, (_, index) => index).sort(() => Math.random() - 0.5);
  return { pool, counts, indexes, total };
}

function tfIdfCase(shape: number[], datatype: 'INT32' | 'INT64', attributes: Record<string, AttributeValue>, width: number) {
  return {
    op: 'TfIdfVectorizer',
    inputs: [{ name: 'x', shape, datatype, fill: (inputShape: number[]) => randomIntegers(inputShape, 0, 5, datatype) }],
    outputs: [{ name: 'y', shape: shape.length === 2 ? [shape[0], width] : [width] }],
    attributes, opset: 9,
  };
}

describe('TfIdfVectorizer', () => {
  for (const mode of ['TF', 'IDF', 'TFIDF']) {
    for (const [minGram, maxGram, maxSkip] of [[1, 1, 0], [2, 2, 0], [1, 2, 3], [2, 3, 2], [1, 3, 5]]) {
      it(`${mode}, ${minGram}- to ${maxGram}-grams, up to ${maxSkip} skips`, async () => {
        const { pool, counts, indexes, total } = randomPool(4, 5, 3);
        const attributes: Record<string, AttributeValue> = {
          mode, min_gram_length: minGram, max_gram_length: maxGram, max_skip_count: maxSkip,
          pool_int64s: pool, ngram_counts: counts, ngram_indexes: indexes,
        };
        if (mode !== 'TF') attributes.weights = floats(Array.from({ length: total }, () => Math.random() * 2));
        await checkOneNode(gpu, tfIdfCase([2, 13], 'INT64', attributes, total));
        await checkOneNode(gpu, tfIdfCase([9], 'INT32', attributes, total));
      });
    }
  }
  it('rows shorter than the pool n-grams count nothing of them', async () => {
    const { pool, counts, indexes, total } = randomPool(2, 3, 2);
    await checkOneNode(gpu, tfIdfCase([3, 2], 'INT64', {
      mode: 'TF', min_gram_length: 1, max_gram_length: 3, max_skip_count: 1, pool_int64s: pool, ngram_counts: counts, ngram_indexes: indexes,
    }, total));
  });
  it('refuses a pool that is not whole n-grams, and missing output positions', async () => {
    const broken = tfIdfCase([4], 'INT64', { mode: 'TF', max_gram_length: 2, pool_int64s: [1, 2, 3, 4], ngram_counts: [0, 1], ngram_indexes: [0, 1] }, 2);
    const error = await compileError(gpu, buildOneNodeModel(broken));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toMatch(/ngram_counts\[1\] = 1: pool_int64s\[1:4\] is not a whole number of 2-grams/);
    const unmapped = tfIdfCase([4], 'INT64', { mode: 'TF', pool_int64s: [1, 2], ngram_counts: [0], ngram_indexes: [0] }, 1);
    expect((await compileError(gpu, buildOneNodeModel(unmapped))).message).toMatch(/ngram_indexes has 1 entries for 2 n-grams/);
  });
});
