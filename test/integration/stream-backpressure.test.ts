/**
 * ModelStreamInfer under a client that writes and never reads: the router stops reading the
 * stream once its answers go unread (and never runs more than its in-flight bound), so what it
 * buffers for that client stays bounded; other clients are served meanwhile.
 */
import { credentials, Metadata } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { GRPCInferenceServiceClient, type ModelInferRequest } from '../../services/protocol/generated/inference/grpc_service.ts';
import { routerMetrics } from '../../services/telemetry/metrics.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster({ policy: { maxBatchSize: 16, maxQueueDelayMs: 1, maxQueueSize: 1024 } });
  await cluster.store('iris', trainIrisModel().onnx);
  await cluster.waitUntilReady('iris');
}, 120_000);

afterAll(async () => {
  await cluster?.stop();
});

async function answeredSoFar(): Promise<number> {
  const metric = await routerMetrics.inferRequests.get();
  return metric.values.reduce((sum, sample) => sum + sample.value, 0);
}

const ROWS = 16;
const request: ModelInferRequest = {
  modelName: 'iris', modelVersion: '', id: '', parameters: {}, outputs: [], rawInputContents: [],
  inputs: [{ name: 'features', datatype: 'FP32', shape: [ROWS, 4], parameters: {}, contents: fp32Contents(new Array(ROWS * 4).fill(5)) }],
};

describe('a ModelStreamInfer client that never reads', () => {
  it('stops being read, and the router keeps serving others', async () => {
    const SENT = 20_000;
    // Its own connection, with small HTTP/2 windows, so unread answers fill them soon.
    const client = new GRPCInferenceServiceClient(cluster.router.address, credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1, 'grpc-node.flow_control_window': 65_535,
    });
    const before = await answeredSoFar();
    const stream = client.modelStreamInfer(new Metadata());
    stream.pause();
    for (let index = 0; index < SENT; index++) stream.write(request);
    await new Promise((wake) => setTimeout(wake, 4_000));
    const answered = (await answeredSoFar()) - before;
    // Each answer is ~300 bytes: a few hundred fill the windows; then the stream is not read.
    expect(answered).toBeLessThan(SENT / 4);
    expect(cluster.router.requests.inFlight).toBeLessThanOrEqual(64);
    const response = await cluster.infer({ modelName: 'iris', inputs: [{ ...request.inputs[0], shape: [1, 4], contents: fp32Contents([5.1, 3.5, 1.4, 0.2]) }] });
    expect(response.outputs[0].contents!.fp32Contents).toHaveLength(3);
    stream.cancel();
    client.close();
  }, 60_000);
});
