/**
 * Health as Kubernetes reads it: per model (SERVING once loaded and warmed), liveness apart from
 * readiness, and a drain that turns readiness NOT_SERVING while queued work still completes.
 */
import { credentials, loadPackageDefinition, status, type GrpcObject, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { fp32Contents, startCluster, type Cluster } from '../integration/harness.ts';

const healthPackage = loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true })) as GrpcObject;
const HealthClient = ((healthPackage.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;

let cluster: Cluster;

beforeAll(async () => {
  // A lone request waits 1.5 s for company, and a drain answers NOT_SERVING for 1.5 s before closing.
  // The queue delay is waited even with nothing running (Triton's rule), so a request stays queued through the drain.
  cluster = await startCluster({ policy: { maxBatchSize: 32, maxQueueDelayMs: 1500, maxQueueSize: 64, waitWhenIdle: true }, drainDelayMs: 1500 });
  await cluster.store('iris', trainIrisModel().onnx);
});

afterAll(async () => {
  await cluster?.stop();
});

function check(service: string): Promise<string> {
  const client = new (HealthClient.Health as ServiceClientConstructor)(cluster.router.address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    (client as unknown as { Check: Function }).Check({ service }, (error: ServiceError | null, response: { status: string }) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    });
  });
}

const flowerRequest = () => ({
  modelName: 'iris',
  inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents([5.1, 3.5, 1.4, 0.2]) }],
});

it('reports a model SERVING once it is loaded, and unknown before', async () => {
  await expect(check('model/iris')).rejects.toMatchObject({ code: status.NOT_FOUND });
  await cluster.waitUntilReady('iris');
  expect(await check('model/iris')).toBe('SERVING');
  expect(await check('liveness')).toBe('SERVING');
  expect(await check('readiness')).toBe('SERVING');
});

it('drains: not ready at once, queued work answered, new work refused, then stopped', async () => {
  const queued = cluster.infer(flowerRequest());
  const model = await cluster.router.catalog.resolve('iris', '');
  while (model.batcher.queue.depth === 0) await new Promise((wake) => setTimeout(wake, 10));
  const shutdown = cluster.router.shutdown(10_000);

  expect(await check('readiness')).toBe('NOT_SERVING');
  expect(await check('')).toBe('NOT_SERVING');
  expect(await check('liveness')).toBe('SERVING');
  const refused = await cluster.infer(flowerRequest()).then(() => undefined, (error: ServiceError) => error);
  expect(refused?.code).toBe(status.UNAVAILABLE);

  // The request queued before the drain is answered, without waiting out its 1.5 s batch delay.
  const started = Date.now();
  const answer = await queued;
  expect(answer.outputs[0].shape).toEqual([1, 3]);
  expect(Date.now() - started).toBeLessThan(1000);
  await shutdown;
});
