/**
 * Text generation with the TypeScript forward pass: greedy or temperature/top-k sampling, one
 * full forward pass per new token (no KV cache: a reference, not the serving path).
 */
import { mulberry32 } from '../iris/train.ts';
import type { BpeEncoder } from './bpe.ts';
import type { Gpt2Model } from './gpt2.ts';

export interface GenerationOptions {
  maxNewTokens: number;
  /** 0 (the default) picks the most likely token; otherwise logits are divided by it and sampled. */
  temperature?: number;
  /** When sampling, only the k most likely tokens are candidates. Default 40. */
  topK?: number;
  /** Seed of the sampler. Default 0. */
  seed?: number;
  /** Generation stops after this token (it is not included in the text). */
  stopTokenId?: number;
}

/** Continues `promptIds`; returns only the new ids, stopping at `stopTokenId` or the context's end. */
export function generateIds(model: Gpt2Model, promptIds: readonly number[], options: GenerationOptions): number[] {
  const { maxNewTokens, temperature = 0, topK = 40, seed = 0, stopTokenId } = options;
  const vocabulary = model.config.vocab_size;
  const random = mulberry32(seed);
  const ids = [...promptIds];
  const generated: number[] = [];
  while (generated.length < maxNewTokens && ids.length < model.config.n_positions) {
    const logits = model.logits(ids, 1, ids.length).subarray((ids.length - 1) * vocabulary, ids.length * vocabulary);
    const next = temperature > 0 ? sample(logits, temperature, topK, random) : argmax(logits);
    if (next === stopTokenId) break;
    ids.push(next);
    generated.push(next);
  }
  return generated;
}

/** `generateIds` on text: the prompt's continuation, decoded. */
export function generateText(model: Gpt2Model, encoder: BpeEncoder, prompt: string, options: GenerationOptions): string {
  return encoder.decode(generateIds(model, encoder.encode(prompt), options));
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

function sample(logits: Float32Array, temperature: number, topK: number, random: () => number): number {
  const candidates = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, Math.max(1, topK));
  const max = logits[candidates[0]];
  const weights = candidates.map((id) => Math.exp((logits[id] - max) / temperature));
  let threshold = random() * weights.reduce((sum, weight) => sum + weight, 0);
  for (let i = 0; i < candidates.length; i++) {
    threshold -= weights[i];
    if (threshold <= 0) return candidates[i];
  }
  return candidates[candidates.length - 1];
}
