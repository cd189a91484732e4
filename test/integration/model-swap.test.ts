/**
 * A new version under load: it is loaded and warmed while traffic stays on the old one, traffic
 * moves once it is ready, no request fails, and the old version is unloaded after it drains.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;
const v1 = trainIrisModel({ seed: 42 });
const v2 = trainIrisModel({ seed: 43 });

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.store('iris', v1.onnx);
  await cluster.waitUntilReady('iris');
});

afterAll(async () => {
  await cluster?.stop();
});

it('swaps to a newly stored version under load with no failed request', async () => {
  const flower = [6.0, 2.9, 4.5, 1.5];
  const failures: string[] = [];
  const seen: Array<{ version: string; values: number[] }> = [];
  let storing = true;
  const worker = async () => {
    // Keep going until the new version has served for a while.
    while (storing || seen.filter((answer) => answer.version === '2').length < 50) {
      try {
        const response = await cluster.infer({
          modelName: 'iris', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(flower) }],
        });
        seen.push({ version: response.modelVersion, values: response.outputs[0].contents!.fp32Contents });
      } catch (error) {
        failures.push(`${(error as ServiceError).code} ${(error as ServiceError).details}`);
      }
      if (seen.length > 20_000) break;
    }
  };
  const load = Promise.all(Array.from({ length: 8 }, worker));
  await new Promise((wake) => setTimeout(wake, 300));
  await cluster.store('iris', v2.onnx);
  storing = false;
  await load;

  expect(failures).toEqual([]);
  // Version 1 answered until the switch, version 2 after it; never interleaved afterwards.
  const firstV2 = seen.findIndex((answer) => answer.version === '2');
  expect(firstV2).toBeGreaterThan(0);
  expect(seen.slice(firstV2 + 100).every((answer) => answer.version === '2')).toBe(true);
  const expectClose = (values: number[], expected: number[]) => values.forEach((value, index) => expect(value).toBeCloseTo(expected[index], 4));
  expectClose(seen[0].values, v1.predict([flower])[0]);
  expectClose(seen.at(-1)!.values, v2.predict([flower])[0]);

  // The old version leaves the executor once its queue has drained.
  const state = cluster.executors[0].state;
  for (const started = Date.now(); state.models.has('iris:1');) {
    expect(Date.now() - started).toBeLessThan(10_000);
    await new Promise((wake) => setTimeout(wake, 50));
  }
  expect(state.models.has('iris:2')).toBe(true);
}, 90_000);
