/**
 * Overload from a cold start: hundreds of clients with short deadlines hit a router whose model
 * has never been loaded (fresh data directory, fresh shader cache). Every call must be answered
 * OK, RESOURCE_EXHAUSTED or DEADLINE_EXCEEDED; none may fail INTERNAL or UNAVAILABLE, which is
 * what a torn-down HTTP/2 session (a connection reset under a burst of cancellations) looks like.
 */
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { GRPCInferenceServiceClient, type ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

const CLIENTS = Number(process.env.NEXUS_OVERLOAD_CLIENTS ?? 300);
const CHANNELS = Number(process.env.NEXUS_OVERLOAD_CHANNELS ?? 2);
const DEADLINE_MS = Number(process.env.NEXUS_OVERLOAD_DEADLINE_MS ?? 100);
const LOAD_SECONDS = Number(process.env.NEXUS_OVERLOAD_SECONDS ?? 8);

let cluster: Cluster;

beforeAll(async () => {
  // Mesa keeps compiled shaders under the cache dir: a fresh one makes the first load really cold.
  process.env.MESA_SHADER_CACHE_DIR = await mkdtemp(join(tmpdir(), 'nexus-mesa-'));
  process.env.XDG_CACHE_HOME = process.env.MESA_SHADER_CACHE_DIR;
  cluster = await startCluster({ policy: { maxBatchSize: 16, maxQueueDelayMs: 2, maxQueueSize: 256 } });
  await cluster.store('iris', trainIrisModel().onnx);
});

afterAll(async () => {
  await cluster?.stop();
});

describe('overload from a cold start', () => {
  it(`answers ${CLIENTS} clients with ${DEADLINE_MS} ms deadlines without resetting a connection`, async () => {
    // Separate subchannel pools: each client object gets its own HTTP/2 connection.
    const channels = Array.from({ length: CHANNELS }, () =>
      new GRPCInferenceServiceClient(cluster.router.address, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }));
    const codes = new Map<string, number>();
    const details = new Map<string, string>();
    const count = (code: number, detail = '') => {
      const name = Object.entries(status).find(([, value]) => value === code)?.[0] ?? String(code);
      codes.set(name, (codes.get(name) ?? 0) + 1);
      if (!details.has(name)) details.set(name, detail);
    };
    const stopAt = Date.now() + LOAD_SECONDS * 1000;
    const call = (client: GRPCInferenceServiceClient) => new Promise<void>((done) => {
      client.modelInfer({
        modelName: 'iris', modelVersion: '', id: '', parameters: {}, outputs: [], rawInputContents: [],
        inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents([5.1, 3.5, 1.4, 0.2]) }],
      }, new Metadata(), { deadline: Date.now() + DEADLINE_MS }, (error: ServiceError | null, _response?: ModelInferResponse) => {
        count(error ? error.code : status.OK, error?.details);
        done();
      });
    });
    const worker = async (client: GRPCInferenceServiceClient) => {
      while (Date.now() < stopAt) await call(client);
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, index) => worker(channels[index % CHANNELS])));
    for (const channel of channels) channel.close();
    const summary = Object.fromEntries(codes);
    console.log('overload from a cold start:', JSON.stringify(summary), JSON.stringify(Object.fromEntries(details)));
    const allowed = new Set(['OK', 'RESOURCE_EXHAUSTED', 'DEADLINE_EXCEEDED']);
    expect([...codes.keys()].filter((name) => !allowed.has(name)), JSON.stringify(summary)).toEqual([]);
    // The router is still up and answers once the model is warm.
    await cluster.waitUntilReady('iris');
    const response = await cluster.infer({
      modelName: 'iris',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents([5.1, 3.5, 1.4, 0.2]) }],
    });
    expect(response.outputs[0].contents!.fp32Contents).toHaveLength(3);
  }, 90_000);
});
