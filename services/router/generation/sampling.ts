/**
 * What a generation request asks for beyond its prompt, checked and with defaults filled: the
 * sampling parameters the executor applies, the most tokens, stop strings and log-probabilities.
 * Two sources: nexus.llm.v1's GenerateRequest, and the `sampling_parameters` JSON of Triton's
 * vLLM backend (where values may be numbers or numeric strings, as tritonclient examples send
 * them). Every refusal is INVALID_ARGUMENT naming the field. Pure.
 */
import type { SamplingParameters } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import type { SamplingParameters as RequestedSampling } from '../../protocol/generated/nexus/llm/v1/llm.ts';
import { invalidArgument } from '../../domain/index.ts';

export const MAX_STOP_STRINGS = 16;
export const MAX_STOP_STRING_BYTES = 256;
export const MAX_TOP_LOGPROBS = 20;

export interface GenerationSettings {
  /** Undefined: the default (see maxNewTokensFor). */
  maxNewTokens: number | undefined;
  sampling: SamplingParameters;
  stop: string[];
  logprobs: boolean;
  topLogprobs: number;
  ignoreEos: boolean;
}

/** Sampling as a model's own defaults would have it: temperature 1, no cuts, no penalties. */
const DEFAULT_SAMPLING: SamplingParameters = {
  temperature: 1, topK: 0, topP: 1, repetitionPenalty: 1, frequencyPenalty: 0, presencePenalty: 0,
};

function checkRange(field: string, value: number, min: number, max: number, { minExclusive = false } = {}): number {
  const belowMin = minExclusive ? value <= min : value < min;
  if (!Number.isFinite(value) || belowMin || value > max) {
    throw invalidArgument(`${field} must be a number ${minExclusive ? 'above' : 'from'} ${min}${minExclusive ? ' up' : ''} to ${max}, got ${value}`);
  }
  return value;
}

function checkInteger(field: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw invalidArgument(`${field} must be an integer from ${min} to ${max}, got ${value}`);
  return value;
}

/** Checks every sampling value; `names` spells each field as the request does. */
function checkSampling(sampling: SamplingParameters, names: Record<keyof SamplingParameters, string>): SamplingParameters {
  checkRange(names.temperature, sampling.temperature, 0, 100);
  checkRange(names.topP, sampling.topP, 0, 1, { minExclusive: true });
  checkInteger(names.topK, sampling.topK, 0, 1_000_000);
  checkRange(names.repetitionPenalty, sampling.repetitionPenalty, 0, 100, { minExclusive: true });
  checkRange(names.frequencyPenalty, sampling.frequencyPenalty, -2, 2);
  checkRange(names.presencePenalty, sampling.presencePenalty, -2, 2);
  if (sampling.seed !== undefined) checkInteger(names.seed, sampling.seed, 0, Number.MAX_SAFE_INTEGER);
  return sampling;
}

export function checkStops(field: string, stops: readonly string[]): string[] {
  if (stops.length > MAX_STOP_STRINGS) throw invalidArgument(`${field} has ${stops.length} stop strings; at most ${MAX_STOP_STRINGS}`);
  stops.forEach((stop, index) => {
    if (stop.length === 0) throw invalidArgument(`${field}[${index}] is empty`);
    const bytes = Buffer.byteLength(stop, 'utf8');
    if (bytes > MAX_STOP_STRING_BYTES) throw invalidArgument(`${field}[${index}] has ${bytes} bytes; at most ${MAX_STOP_STRING_BYTES}`);
  });
  return [...stops];
}

const LLM_NAMES: Record<keyof SamplingParameters, string> = {
  temperature: 'sampling.temperature', topP: 'sampling.top_p', topK: 'sampling.top_k', repetitionPenalty: 'sampling.repetition_penalty',
  frequencyPenalty: 'sampling.frequency_penalty', presencePenalty: 'sampling.presence_penalty', seed: 'seed',
};

/** The settings of a nexus.llm.v1 GenerateRequest. */
export function settingsOfRequest(request: {
  maxNewTokens: number; sampling?: RequestedSampling; seed?: number; stop: string[]; logprobs: boolean; topLogprobs: number; ignoreEos: boolean;
}): GenerationSettings {
  const given = request.sampling;
  const sampling = checkSampling({
    temperature: given?.temperature ?? DEFAULT_SAMPLING.temperature,
    topP: given?.topP ?? DEFAULT_SAMPLING.topP,
    topK: given?.topK ?? DEFAULT_SAMPLING.topK,
    repetitionPenalty: given?.repetitionPenalty ?? DEFAULT_SAMPLING.repetitionPenalty,
    frequencyPenalty: given?.frequencyPenalty ?? DEFAULT_SAMPLING.frequencyPenalty,
    presencePenalty: given?.presencePenalty ?? DEFAULT_SAMPLING.presencePenalty,
    seed: request.seed,
  }, LLM_NAMES);
  const topLogprobs = checkInteger('top_logprobs', request.topLogprobs, 0, MAX_TOP_LOGPROBS);
  if (topLogprobs > 0 && !request.logprobs) throw invalidArgument('top_logprobs needs logprobs: true');
  return {
    maxNewTokens: request.maxNewTokens === 0 ? undefined : request.maxNewTokens,
    sampling, stop: checkStops('stop', request.stop), logprobs: request.logprobs, topLogprobs, ignoreEos: request.ignoreEos,
  };
}

/** vLLM's defaults for Triton's vLLM backend: 16 tokens unless max_tokens says otherwise. */
export const TRITON_DEFAULT_MAX_TOKENS = 16;

const TRITON_NUMBER_KEYS = {
  temperature: 'temperature', top_p: 'topP', top_k: 'topK', repetition_penalty: 'repetitionPenalty',
  frequency_penalty: 'frequencyPenalty', presence_penalty: 'presencePenalty', seed: 'seed',
} as const;
const TRITON_KEYS = [...Object.keys(TRITON_NUMBER_KEYS), 'max_tokens', 'stop', 'ignore_eos', 'n', 'skip_special_tokens'];

/** A number as the JSON holds it: a number, or a string of one (vLLM's backend converts those). */
function numberIn(json: Record<string, unknown>, key: string): number | undefined {
  const value = json[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && value.trim() !== '' && Number.isFinite(Number(value))) return Number(value);
  throw invalidArgument(`sampling_parameters.${key} must be a number, got ${JSON.stringify(value)}`);
}

function booleanIn(json: Record<string, unknown>, key: string): boolean | undefined {
  const value = json[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === 'false') return value === 'true';
  throw invalidArgument(`sampling_parameters.${key} must be true or false, got ${JSON.stringify(value)}`);
}

/** The settings of the `sampling_parameters` input of Triton's vLLM convention (a JSON object as text; '' for none). */
export function settingsOfTritonJson(text: string): GenerationSettings {
  let json: Record<string, unknown> = {};
  if (text.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (error) {
      throw invalidArgument(`sampling_parameters is not JSON: ${(error as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalidArgument('sampling_parameters must be a JSON object');
    json = parsed as Record<string, unknown>;
  }
  const unknown = Object.keys(json).filter((key) => !TRITON_KEYS.includes(key));
  if (unknown.length > 0) throw invalidArgument(`sampling_parameters.${unknown[0]} is not supported; known: ${TRITON_KEYS.join(', ')}`);
  const n = numberIn(json, 'n');
  if (n !== undefined && n !== 1) throw invalidArgument(`sampling_parameters.n must be 1, got ${n}`);
  if (booleanIn(json, 'skip_special_tokens') === false) throw invalidArgument('sampling_parameters.skip_special_tokens: special tokens are always left out of the text');
  const sampling: SamplingParameters = { ...DEFAULT_SAMPLING };
  for (const [key, field] of Object.entries(TRITON_NUMBER_KEYS)) {
    const value = numberIn(json, key);
    if (value !== undefined) sampling[field] = value;
  }
  // vLLM's "no top-k cut" is -1.
  if (sampling.topK === -1) sampling.topK = 0;
  const names = Object.fromEntries(Object.entries(TRITON_NUMBER_KEYS).map(([key, field]) => [field, `sampling_parameters.${key}`])) as Record<keyof SamplingParameters, string>;
  checkSampling(sampling, names);
  const maxTokens = numberIn(json, 'max_tokens');
  if (maxTokens !== undefined) checkInteger('sampling_parameters.max_tokens', maxTokens, 1, 1 << 30);
  const stop = json.stop;
  let stops: string[] = [];
  if (typeof stop === 'string') stops = [stop];
  else if (Array.isArray(stop) && stop.every((entry) => typeof entry === 'string')) stops = stop as string[];
  else if (stop !== undefined && stop !== null) throw invalidArgument('sampling_parameters.stop must be a string or a list of strings');
  return {
    maxNewTokens: maxTokens ?? TRITON_DEFAULT_MAX_TOKENS,
    sampling, stop: checkStops('sampling_parameters.stop', stops), logprobs: false, topLogprobs: 0,
    ignoreEos: booleanIn(json, 'ignore_eos') ?? false,
  };
}
