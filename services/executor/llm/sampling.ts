/**
 * Choosing the next token from a row of logits, on the host, for the sequences the GPU's argmax
 * cannot serve (temperature, top-k, top-p, penalties, log-probabilities). Pure and reproducible:
 * the random number of a sequence's n-th token comes from a counter-based generator keyed by
 * (seed, n) (SplitMix64 of the pair), so the same seed, prompt and parameters give the same
 * tokens however the sequence was batched, preempted or recomputed.
 *
 * Order, as Hugging Face applies its processors: repetition penalty over prompt and generated
 * tokens, OpenAI's frequency and presence penalties over generated tokens, temperature, top-k,
 * top-p, then a draw by inverse CDF over the candidates: in descending probability (ties to the
 * lower token id) after a cut, in id order without one. Temperature 0 is greedy: the largest logit, the lowest id on ties, exactly as
 * the GPU's argmax picks. Log-probabilities are those of the penalized, temperature-scaled
 * distribution before the top-k / top-p cut (temperature 1 when greedy).
 */
import { invalidArgument } from '../../domain/index.ts';
import type { SamplingParameters } from '../../protocol/generated/nexus/executor/v1/executor.ts';

/** Most alternatives a token's top_logprobs may list (OpenAI's limit). */
export const MAX_TOP_LOGPROBS = 20;

export interface SamplingSettings {
  readonly temperature: number;
  /** 0: no cut. */
  readonly topK: number;
  /** 1: no cut. */
  readonly topP: number;
  /** 1: none. */
  readonly repetitionPenalty: number;
  readonly frequencyPenalty: number;
  readonly presencePenalty: number;
  readonly seed: bigint;
  readonly logprobs: boolean;
  readonly topLogprobs: number;
}

/**
 * A request's sampling parameters checked and defaulted; INVALID_ARGUMENT naming the field.
 * `randomSeed` is used when the request names no seed.
 */
export function samplingSettingsOf(parameters: SamplingParameters | undefined, logprobs: boolean, topLogprobs: number, randomSeed: bigint): SamplingSettings {
  const field = (name: string) => `start_sequence.sampling.${name}`;
  const temperature = parameters?.temperature ?? 0;
  if (!Number.isFinite(temperature) || temperature < 0) throw invalidArgument(`${field('temperature')} is ${temperature}; it must be >= 0 (0: greedy)`);
  const topP = parameters?.topP || 1;
  if (!Number.isFinite(topP) || topP <= 0 || topP > 1) throw invalidArgument(`${field('top_p')} is ${topP}; it must be in (0, 1]`);
  const repetitionPenalty = parameters?.repetitionPenalty || 1;
  if (!Number.isFinite(repetitionPenalty) || repetitionPenalty <= 0) throw invalidArgument(`${field('repetition_penalty')} is ${repetitionPenalty}; it must be > 0 (1 or 0: none)`);
  for (const [name, value] of [['frequency_penalty', parameters?.frequencyPenalty ?? 0], ['presence_penalty', parameters?.presencePenalty ?? 0]] as const) {
    if (!Number.isFinite(value) || Math.abs(value) > 2) throw invalidArgument(`${field(name)} is ${value}; it must be in [-2, 2]`);
  }
  if (topLogprobs > MAX_TOP_LOGPROBS) throw invalidArgument(`start_sequence.top_logprobs is ${topLogprobs}; at most ${MAX_TOP_LOGPROBS}`);
  return {
    temperature, topK: parameters?.topK ?? 0, topP, repetitionPenalty,
    frequencyPenalty: parameters?.frequencyPenalty ?? 0, presencePenalty: parameters?.presencePenalty ?? 0,
    seed: parameters?.seed !== undefined ? BigInt(parameters.seed) : randomSeed,
    logprobs, topLogprobs: logprobs ? topLogprobs : 0,
  };
}

/** True when the GPU's argmax alone decides the token: greedy, no penalty, no log-probabilities. */
export function argmaxSuffices(settings: SamplingSettings): boolean {
  return settings.temperature === 0 && settings.repetitionPenalty === 1 && settings.frequencyPenalty === 0
    && settings.presencePenalty === 0 && !settings.logprobs;
}

const MASK_64 = (1n << 64n) - 1n;

/** A uniform number in [0, 1) for the `step`-th token of a sequence seeded `seed` (SplitMix64). */
export function uniformFor(seed: bigint, step: number): number {
  let z = (seed + BigInt(step + 1) * 0x9e3779b97f4a7c15n) & MASK_64;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK_64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK_64;
  z ^= z >> 31n;
  return Number(z >> 11n) / 2 ** 53;
}

export interface ChosenToken {
  readonly token: number;
  /** 0 unless log-probabilities were asked for. */
  readonly logprob: number;
  readonly top: ReadonlyArray<{ readonly token: number; readonly logprob: number }>;
}

/** The token ids of `scores` in descending score, ties to the lower id, limited to those >= the `count`-th score. */
function leading(scores: Float64Array, count: number): number[] {
  const sorted = Float64Array.from(scores).sort();
  const threshold = sorted[Math.max(0, sorted.length - Math.min(count, sorted.length))];
  const ids: number[] = [];
  for (let id = 0; id < scores.length; id++) if (scores[id] >= threshold) ids.push(id);
  return ids.sort((left, right) => scores[right] - scores[left] || left - right);
}

/**
 * The next token of a sequence whose known tokens are `tokens` (its first `promptLength` the
 * prompt) from its logits row, for its `step`-th generated token.
 */
export function chooseToken(logits: Float32Array, settings: SamplingSettings, tokens: readonly number[], promptLength: number, step: number): ChosenToken {
  const scores = Float64Array.from(logits);
  if (settings.repetitionPenalty !== 1) {
    for (const token of new Set(tokens)) {
      scores[token] = scores[token] > 0 ? scores[token] / settings.repetitionPenalty : scores[token] * settings.repetitionPenalty;
    }
  }
  if (settings.frequencyPenalty !== 0 || settings.presencePenalty !== 0) {
    const counts = new Map<number, number>();
    for (let index = promptLength; index < tokens.length; index++) counts.set(tokens[index], (counts.get(tokens[index]) ?? 0) + 1);
    for (const [token, count] of counts) scores[token] -= settings.frequencyPenalty * count + settings.presencePenalty;
  }
  const greedy = settings.temperature === 0;
  if (!greedy) for (let id = 0; id < scores.length; id++) scores[id] /= settings.temperature;

  let token: number;
  if (greedy) {
    token = 0;
    for (let id = 1; id < scores.length; id++) if (scores[id] > scores[token]) token = id;
  } else {
    token = draw(scores, settings, uniformFor(settings.seed, step));
  }
  if (!settings.logprobs) return { token, logprob: 0, top: [] };
  let max = -Infinity;
  for (const score of scores) max = Math.max(max, score);
  let sum = 0;
  for (const score of scores) sum += Math.exp(score - max);
  const logNormalizer = max + Math.log(sum);
  const top = settings.topLogprobs > 0
    ? leading(scores, settings.topLogprobs).slice(0, settings.topLogprobs).map((id) => ({ token: id, logprob: scores[id] - logNormalizer }))
    : [];
  return { token, logprob: scores[token] - logNormalizer, top };
}

/** A draw from the top-k / top-p candidates of temperature-scaled `scores` with the uniform `u`. */
function draw(scores: Float64Array, settings: SamplingSettings, u: number): number {
  const topK = settings.topK > 0 ? Math.min(settings.topK, scores.length) : scores.length;
  let max = -Infinity;
  for (const score of scores) max = Math.max(max, score);
  // Candidates in descending order. Without a top-k cut only those that top-p may keep matter:
  // the smallest prefix of the sorted scores reaching top_p of the mass, found on a sorted copy.
  let candidates: number[];
  if (topK < scores.length) {
    candidates = leading(scores, topK).slice(0, topK);
  } else if (settings.topP < 1) {
    const sorted = Float64Array.from(scores).sort().reverse();
    let total = 0;
    for (const score of sorted) total += Math.exp(score - max);
    let kept = 0;
    let mass = 0;
    while (kept < sorted.length && mass < settings.topP * total) mass += Math.exp(sorted[kept++] - max);
    candidates = leading(scores, kept);
  } else {
    // No cut: every token, in id order (the draw is as fair, without sorting the vocabulary).
    candidates = Array.from({ length: scores.length }, (_, id) => id);
  }
  const weights = candidates.map((id) => Math.exp(scores[id] - max));
  let total = weights.reduce((sum, weight) => sum + weight, 0);
  if (settings.topP < 1) {
    let mass = 0;
    let kept = 0;
    while (kept < weights.length && mass < settings.topP * total) mass += weights[kept++];
    candidates = candidates.slice(0, Math.max(kept, 1));
    weights.length = candidates.length;
    total = weights.reduce((sum, weight) => sum + weight, 0);
  }
  let threshold = u * total;
  for (let index = 0; index < candidates.length; index++) {
    threshold -= weights[index];
    if (threshold < 0) return candidates[index];
  }
  return candidates[candidates.length - 1];
}
