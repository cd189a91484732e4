/**
 * Triton's streaming extension and the schedule-policy parameters against the real services.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInferRequest, ModelStreamInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;
let iris: TrainedIrisModel;

beforeAll(async () => {
  // A long queue delay that is waited even with nothing running (Triton's rule) makes a lone
  // request wait, so a short timeout expires it in the queue.
  cluster = await startCluster({ policy: { maxBatchSize: 32, maxQueueDelayMs: 1000, maxQueueSize: 64, waitWhenIdle: true } });
  iris = trainIrisModel();
  await cluster.store('iris', iris.onnx);
  await cluster.waitUntilReady('iris');
});

afterAll(async () => {
  await cluster?.stop();
});

const flowerRequest = (id: string, rows: number[][], extra: Partial<ModelInferRequest> = {}): ModelInferRequest => ({
  modelName: 'iris', modelVersion: '', id, parameters: {}, outputs: [], rawInputContents: [],
  inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 4], parameters: {}, contents: fp32Contents(rows.flat()) }],
  ...extra,
});

describe('ModelStreamInfer', () => {
  it('answers every request on the stream by id, a bad one with an error, and carries on', async () => {
    const flowers = [[[5.1, 3.5, 1.4, 0.2]], [[6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], [[4.9, 3.0, 1.4, 0.2]]];
    const stream = cluster.inference.modelStreamInfer();
    const responses: ModelStreamInferResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (response: ModelStreamInferResponse) => responses.push(response));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    flowers.forEach((rows, index) => stream.write(flowerRequest(`ok-${index}`, rows)));
    stream.write(flowerRequest('bad', [[1, 2, 3]], {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 3], parameters: {}, contents: fp32Contents([1, 2, 3]) }],
    }));
    stream.end();
    await done;

    expect(responses).toHaveLength(4);
    const byId = new Map(responses.map((response) => [response.inferResponse!.id, response]));
    expect(byId.get('bad')!.errorMessage).toMatch(/^INVALID_ARGUMENT: .*shape \[1,3\]/);
    flowers.forEach((rows, index) => {
      const response = byId.get(`ok-${index}`)!;
      expect(response.errorMessage).toBe('');
      const values = response.inferResponse!.outputs[0].contents!.fp32Contents;
      iris.predict(rows).flat().forEach((expected, at) => expect(values[at]).toBeCloseTo(expected, 4));
    });
    // Requests sent together on one stream are batched together.
    const stats = await cluster.executorStats();
    expect(Object.keys(stats.batchesBySize).map(Number)).toContain(4);
  });
});

describe('deadlines', () => {
  it('answers DEADLINE_EXCEEDED for a timeout that passes in the queue, and never runs the request', async () => {
    const before = await cluster.executorStats();
    const started = Date.now();
    const error = await cluster.infer(flowerRequest('late', [[5.1, 3.5, 1.4, 0.2]], { parameters: { timeout: { int64Param: 30_000 } } }))
      .then(() => undefined, (failure: ServiceError) => failure);
    expect(error?.code).toBe(status.DEADLINE_EXCEEDED);
    expect(error?.details).toMatch(/not executed/);
    // Answered when its 30 ms deadline passed, well before the 1 s batch delay would have sent it
    // (the margin absorbs a loaded CI machine).
    expect(Date.now() - started).toBeLessThan(800);
    expect((await cluster.executorStats()).batchesBySize).toEqual(before.batchesBySize);
  });

  it('rejects a malformed priority with INVALID_ARGUMENT', async () => {
    const error = await cluster.infer(flowerRequest('p', [[5.1, 3.5, 1.4, 0.2]], { parameters: { priority: { stringParam: 'urgent' } } }))
      .then(() => undefined, (failure: ServiceError) => failure);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/parameters.priority/);
  });

  it('serves a high-priority request', async () => {
    const response = await cluster.infer(flowerRequest('vip', [[5.1, 3.5, 1.4, 0.2]], { parameters: { priority: { stringParam: 'high' } } }));
    expect(response.id).toBe('vip');
  });
});
