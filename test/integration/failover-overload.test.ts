/**
 * Failures survived: an executor killed with SIGKILL under load fails no request, and overload
 * is refused promptly with RESOURCE_EXHAUSTED instead of queueing without bound.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

/** Length of the load during which one executor is killed, in seconds (the issue asks for 30). */
const LOAD_SECONDS = Number(process.env.NEXUS_FAILOVER_SECONDS ?? 30);

let cluster: Cluster;
let iris: TrainedIrisModel;

beforeAll(async () => {
  cluster = await startCluster({ executorProcesses: 2, policy: { maxBatchSize: 16, maxQueueDelayMs: 2, maxQueueSize: 256 } });
  iris = trainIrisModel();
  await cluster.store('iris', iris.onnx);
  await cluster.waitUntilReady('iris');
  // Both executors hold the model before the load starts.
  const started = Date.now();
  while (!cluster.router.pool.links.every((link) => link.loaded.has('iris:1'))) {
    expect(Date.now() - started).toBeLessThan(30_000);
    await new Promise((wake) => setTimeout(wake, 50));
  }
});

afterAll(async () => {
  await cluster?.stop();
});

const flower = () => [4 + Math.random() * 4, 2 + Math.random() * 2.5, 1 + Math.random() * 6, Math.random() * 2.5];

describe('an executor killed with SIGKILL under load', () => {
  it(`fails no request during a ${LOAD_SECONDS}-second load`, async () => {
    const stopAt = Date.now() + LOAD_SECONDS * 1000;
    const failures: string[] = [];
    let answered = 0;
    let wrong = 0;
    const worker = async () => {
      while (Date.now() < stopAt) {
        const rows = [flower()];
        try {
          const response = await cluster.infer({
            modelName: 'iris',
            inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(rows.flat()) }],
          }, 20_000);
          const expected = iris.predict(rows).flat();
          if (response.outputs[0].contents!.fp32Contents.some((value, index) => Math.abs(value - expected[index]) > 1e-4)) wrong += 1;
          answered += 1;
        } catch (error) {
          failures.push(`${(error as ServiceError).code}: ${(error as ServiceError).details}`);
        }
      }
    };
    const victim = cluster.executorProcesses[0];
    const killer = (async () => {
      await new Promise((wake) => setTimeout(wake, (LOAD_SECONDS * 1000) / 3));
      victim.process.kill('SIGKILL');
    })();
    await Promise.all([...Array.from({ length: 16 }, worker), killer]);

    expect(victim.process.signalCode).toBe('SIGKILL');
    expect(failures).toEqual([]);
    expect(wrong).toBe(0);
    expect(answered).toBeGreaterThan(100);
    // The survivor carried the load after the kill.
    const survivorStats = await cluster.executorStats(1);
    expect(Object.values(survivorStats.batchesBySize).reduce((sum, count) => sum + count, 0)).toBeGreaterThan(0);
  }, (LOAD_SECONDS + 60) * 1000);
});

describe('overload', () => {
  it('refuses what exceeds the bounded queue with RESOURCE_EXHAUSTED, answers the rest, and keeps serving', async () => {
    // 3x the queue's capacity arrives at once.
    const burst = 3 * 256;
    const results = await Promise.all(Array.from({ length: burst }, async () => {
      const started = performance.now();
      try {
        await cluster.infer({
          modelName: 'iris',
          inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(flower()) }],
        }, 60_000);
        return { ok: true, ms: performance.now() - started };
      } catch (error) {
        return { ok: false, code: (error as ServiceError).code, ms: performance.now() - started };
      }
    }));
    const refused = results.filter((result) => !result.ok);
    const accepted = results.filter((result) => result.ok);
    expect(refused.length).toBeGreaterThan(0);
    expect(new Set(refused.map((result) => result.code))).toEqual(new Set([status.RESOURCE_EXHAUSTED]));
    expect(accepted.length).toBeGreaterThanOrEqual(256);
    // Bounded latency for what was accepted: the queue never holds more than 256 requests.
    const latencies = accepted.map((result) => result.ms).sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)];
    expect(p99).toBeLessThan(10_000);
    // Still serving.
    const after = await cluster.infer({
      modelName: 'iris',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(flower()) }],
    });
    expect(after.outputs[0].shape).toEqual([1, 3]);
  }, 120_000);
});
