/**
 * Text generation's Prometheus metrics, on the process's registry beside the router's others:
 *
 *   nexus_generation_tokens_total{model, kind}           prompt and generated tokens of finished generations
 *   nexus_generations_total{model, outcome}              generations by finish reason (length, eos, stop, cancelled) or status code name
 *   nexus_generation_time_to_first_token_seconds{model}  from arrival to the first generated token
 *   nexus_generation_inter_token_latency_seconds{model}  between two generated tokens of a sequence
 */
import { Counter, Histogram } from 'prom-client';
import { metricsRegistry } from '../../telemetry/metrics.ts';
import type { GenerationReporter } from './generation-path.ts';

const registers = [metricsRegistry];
/** 5 ms to 60 s: a first token waits for the prompt's prefill, and for KV capacity when the executors are full. */
const FIRST_TOKEN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** 1 ms to 2.5 s: one decode step of a batch. */
const INTER_TOKEN_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5];

const generationMetrics = {
  tokens: new Counter({
    name: 'nexus_generation_tokens_total', help: 'Tokens of finished generations, by model and kind (prompt or generated).',
    labelNames: ['model', 'kind'], registers,
  }),
  generations: new Counter({
    name: 'nexus_generations_total', help: 'Generations ended, by model and outcome (a finish reason or a status code name).',
    labelNames: ['model', 'outcome'], registers,
  }),
  timeToFirstToken: new Histogram({
    name: 'nexus_generation_time_to_first_token_seconds', help: 'Time from a generation request\'s arrival to its first generated token, by model.',
    labelNames: ['model'], buckets: FIRST_TOKEN_BUCKETS, registers,
  }),
  interTokenLatency: new Histogram({
    name: 'nexus_generation_inter_token_latency_seconds', help: 'Time between two generated tokens of one sequence, by model.',
    labelNames: ['model'], buckets: INTER_TOKEN_BUCKETS, registers,
  }),
};

export const prometheusGenerationReporter: GenerationReporter = {
  generationFinished(model, outcome, promptTokens, generatedTokens) {
    generationMetrics.generations.inc({ model, outcome });
    if (promptTokens > 0) generationMetrics.tokens.inc({ model, kind: 'prompt' }, promptTokens);
    if (generatedTokens > 0) generationMetrics.tokens.inc({ model, kind: 'generated' }, generatedTokens);
  },
  timeToFirstToken(model, seconds) {
    generationMetrics.timeToFirstToken.observe({ model }, seconds);
  },
  interTokenLatency(model, seconds) {
    generationMetrics.interTokenLatency.observe({ model }, seconds);
  },
};
