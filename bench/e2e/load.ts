/**
 * Load through a router for the end-to-end benches and the gate: a closed loop (a fixed number
 * of clients, each sending its next request when the last one is answered) and an open loop (a
 * fixed rate, late requests charged from their scheduled time), and what the services' /metrics
 * say they spent meanwhile (CPU seconds, GPU seconds).
 */
import { Metadata } from '@grpc/grpc-js';
import type { GRPCInferenceServiceClient, ModelInferRequest, ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import type { UpCluster } from '../nexus-up.ts';
import { mean, median, percentile } from '../lib/stats.ts';
import type { BenchModel } from './models.ts';

interface Sample {
  latencyMs: number;
  gpuMs: number;
  batch: number;
}

export interface LoadResult {
  samples: Sample[];
  errors: number;
  seconds: number;
}

export function requestFor(model: BenchModel): ModelInferRequest {
  const values = Float32Array.from({ length: model.shape.reduce((product, dim) => product * dim, 1) }, () => Math.random() * 5);
  return {
    modelName: model.name, modelVersion: '', id: '', parameters: {}, outputs: [],
    inputs: [{ name: model.inputName, datatype: 'FP32', shape: model.shape, parameters: {}, contents: undefined }],
    rawInputContents: [new Uint8Array(values.buffer)],
  };
}

export function send(client: GRPCInferenceServiceClient, request: ModelInferRequest): Promise<ModelInferResponse> {
  return new Promise((resolveResponse, reject) =>
    client.modelInfer(request, new Metadata(), { deadline: Date.now() + 60_000 }, (error, response) => (error ? reject(error) : resolveResponse(response))));
}

async function measureOne(client: GRPCInferenceServiceClient, model: BenchModel, startedAt: number, samples: Sample[], errors: { count: number }) {
  try {
    const response = await send(client, requestFor(model));
    samples.push({
      latencyMs: performance.now() - startedAt,
      gpuMs: (response.parameters.nexus_gpu_us?.int64Param ?? 0) / 1000,
      batch: response.parameters.nexus_batch_size?.int64Param ?? 1,
    });
  } catch {
    errors.count += 1;
  }
}

export async function closedLoop(client: GRPCInferenceServiceClient, model: BenchModel, concurrency: number, seconds: number): Promise<LoadResult> {
  const samples: Sample[] = [];
  const errors = { count: 0 };
  const started = performance.now();
  const stopAt = started + seconds * 1000;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < stopAt) await measureOne(client, model, performance.now(), samples, errors);
  }));
  return { samples, errors: errors.count, seconds: (performance.now() - started) / 1000 };
}

export async function openLoop(client: GRPCInferenceServiceClient, model: BenchModel, rate: number, seconds: number): Promise<LoadResult> {
  const samples: Sample[] = [];
  const errors = { count: 0 };
  const total = Math.round(rate * seconds);
  const start = performance.now();
  const pending: Promise<void>[] = [];
  for (let index = 0; index < total; index++) {
    const scheduled = start + (index * 1000) / rate;
    const wait = scheduled - performance.now();
    if (wait > 0) await new Promise((wake) => setTimeout(wake, wait));
    // Latency counts from the scheduled time, so a client that falls behind is charged for it.
    pending.push(measureOne(client, model, scheduled, samples, errors));
  }
  await Promise.all(pending);
  return { samples, errors: errors.count, seconds: (performance.now() - start) / 1000 };
}

/** What a service process's /metrics says it has spent so far. */
export interface Spent {
  /** CPU seconds of the router, the executors (summed) and this client. */
  routerCpu: number;
  executorCpu: number;
  clientCpu: number;
  /** GPU seconds the executors timed (timestamp queries), summed over models. */
  executorGpu: number;
  /** nexus_executor_gpu_busy_ratio (the last 10 s), the busiest executor. */
  gpuBusyGauge: number;
  atMs: number;
}

async function scrape(url: string): Promise<string> {
  return (await fetch(url)).text();
}

/** The sum of every series of `name` in a Prometheus text exposition. */
export function sumOfSeries(text: string, name: string): number {
  let total = 0;
  for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) total += Number(match[1]);
  return total;
}

export async function spentSoFar(cluster: UpCluster): Promise<Spent> {
  let executorCpu = 0;
  let executorGpu = 0;
  let gpuBusyGauge = 0;
  for (const [name, url] of cluster.metrics) {
    if (!name.startsWith('executor')) continue;
    const text = await scrape(url);
    executorCpu += sumOfSeries(text, 'nexus_process_process_cpu_seconds_total');
    executorGpu += sumOfSeries(text, 'nexus_gpu_execution_seconds_sum');
    gpuBusyGauge = Math.max(gpuBusyGauge, sumOfSeries(text, 'nexus_executor_gpu_busy_ratio'));
  }
  const { user, system } = process.cpuUsage();
  return {
    routerCpu: sumOfSeries(await scrape(cluster.metrics.get('router')!), 'nexus_process_process_cpu_seconds_total'),
    executorCpu, clientCpu: (user + system) / 1e6, executorGpu, gpuBusyGauge, atMs: performance.now(),
  };
}

export interface LoadSummary {
  throughput: number;
  meanMs: number;
  p50: number;
  p95: number;
  p99: number;
  meanBatch: number;
  /** Median of end to end minus the GPU time of the batch the request ran in. */
  overheadP50: number;
  gpuP50: number;
  errors: number;
}

export function summarise(result: LoadResult): LoadSummary {
  const latencies = result.samples.map((sample) => sample.latencyMs);
  return {
    throughput: result.samples.length / result.seconds,
    meanMs: mean(latencies), p50: percentile(latencies, 0.5), p95: percentile(latencies, 0.95), p99: percentile(latencies, 0.99),
    meanBatch: mean(result.samples.map((sample) => sample.batch)),
    overheadP50: median(result.samples.map((sample) => sample.latencyMs - sample.gpuMs)),
    gpuP50: median(result.samples.map((sample) => sample.gpuMs)),
    errors: result.errors,
  };
}
