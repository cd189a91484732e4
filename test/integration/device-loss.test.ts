/**
 * A lost GPU device: the executor turns NOT_SERVING, answers every batch in flight (and every
 * later one) UNAVAILABLE "GPU device lost", and calls its exit hook so a supervisor restarts it.
 * The loss is real: the test destroys the executor's device, which Dawn reports as 'destroyed'.
 */
import { credentials, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../services/domain/index.ts';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { startExecutor, type RunningExecutor } from '../../services/executor/service/index.ts';
import { ExecutorStream, fp32Rows, registryRecord } from '../executor/service/executor-stream.ts';
import { startCluster, type Cluster } from './harness.ts';

const health = (loadPackageDefinition(loadSync(healthProtoPath, { keepCase: true, enums: String, defaults: true })) as GrpcObject).grpc as GrpcObject;
const HealthClient = ((health.health as GrpcObject).v1 as GrpcObject).Health as ServiceClientConstructor;

function healthOf(address: string, service = ''): Promise<string> {
  const client = new HealthClient(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.check({ service }, (error: Error | null, response: { status: string }) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    });
  });
}

let cluster: Cluster;
let executor: RunningExecutor;
const exits: string[] = [];

beforeAll(async () => {
  cluster = await startCluster({ executors: 0 });
  await cluster.store('iris', trainIrisModel().onnx);
  executor = await startExecutor({
    registryAddress: cluster.registry.address, cacheDir: join(cluster.dataDir, 'loss-cache'), onDeviceLost: (reason) => exits.push(reason),
  });
}, 120_000);

afterAll(async () => {
  await executor?.shutdown(1000);
  await cluster?.stop();
});

it('turns NOT_SERVING, fails batches in flight UNAVAILABLE and calls the exit hook', async () => {
  const stream = new ExecutorStream(executor.address);
  try {
    await stream.hello;
    expect((await stream.load(await registryRecord(cluster.registry.address, 'iris', 1))).errorMessage).toBe('');
    const good = await stream.execute({ modelName: 'iris', version: 1, inputs: [fp32Rows('features', 1, [5.1, 3.5, 1.4, 0.2])] });
    expect(good.errorCode).toBe(0);
    expect(await healthOf(executor.address)).toBe('SERVING');

    const inflight = Array.from({ length: 4 }, () =>
      stream.execute({ modelName: 'iris', version: 1, inputs: [fp32Rows('features', 32, [5.1, 3.5, 1.4, 0.2])] }));
    await new Promise((resolve) => setTimeout(resolve, 1));
    executor.gpu.device.destroy();
    const results = await Promise.all(inflight);
    await expect.poll(() => exits.length).toBe(1);
    expect(exits[0]).toMatch(/^destroyed/);
    // Batches that finished before the loss may have answered; every other one is UNAVAILABLE.
    for (const result of results) {
      expect([0, ErrorCode.UNAVAILABLE]).toContain(result.errorCode);
      if (result.errorCode !== 0) expect(result.errorMessage).toMatch(/^GPU device lost: destroyed/);
    }
    const after = await stream.execute({ modelName: 'iris', version: 1, inputs: [fp32Rows('features', 1, [5.1, 3.5, 1.4, 0.2])] });
    expect(after.errorCode).toBe(ErrorCode.UNAVAILABLE);
    expect(after.errorMessage).toMatch(/^GPU device lost: destroyed/);
    const reload = await stream.load(await registryRecord(cluster.registry.address, 'iris', 1));
    expect(reload.errorCode).toBe(ErrorCode.UNAVAILABLE);
    expect(await healthOf(executor.address)).toBe('NOT_SERVING');
    expect(await healthOf(executor.address, 'liveness')).toBe('NOT_SERVING');
  } finally {
    stream.close();
  }
});

it('by default exits only after the UNAVAILABLE answers have left the process', async () => {
  const own = await startExecutor({ registryAddress: cluster.registry.address, cacheDir: join(cluster.dataDir, 'loss-cache') });
  const stream = new ExecutorStream(own.address);
  let answered = 0;
  const answeredAtExit: number[] = [];
  const exit = vi.spyOn(process, 'exit').mockImplementation(() => {
    answeredAtExit.push(answered);
    return undefined as never;
  });
  try {
    await stream.hello;
    expect((await stream.load(await registryRecord(cluster.registry.address, 'iris', 1))).errorMessage).toBe('');
    const inflight = Array.from({ length: 4 }, () =>
      stream.execute({ modelName: 'iris', version: 1, inputs: [fp32Rows('features', 32, [5.1, 3.5, 1.4, 0.2])] }).then((result) => {
        answered += 1;
        return result;
      }));
    await new Promise((resolve) => setTimeout(resolve, 1));
    own.gpu.device.destroy();
    await Promise.all(inflight);
    await expect.poll(() => answeredAtExit.length).toBe(1);
    expect(answeredAtExit[0]).toBe(4);
    expect(exit).toHaveBeenCalledWith(1);
  } finally {
    exit.mockRestore();
    stream.close();
    await own.shutdown(1000);
  }
});
