/**
 * ModelStreamInfer under a client that writes and stops reading: the router stops reading the
 * stream once its answers go unread (and never runs more than its in-flight bound), so what it
 * buffers for that client stays bounded; other clients are served meanwhile, and once the client
 * reads again every answer arrives.
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

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));

/** The answered count once it has not moved for `quietMs`, or after `limitMs`. */
async function settledCount(quietMs: number, limitMs: number): Promise<number> {
  const started = Date.now();
  let last = await answeredSoFar();
  let quietSince = Date.now();
  while (Date.now() - started < limitMs) {
    await sleep(250);
    const now = await answeredSoFar();
    if (now !== last) {
      last = now;
      quietSince = Date.now();
    } else if (Date.now() - quietSince >= quietMs) {
      break;
    }
  }
  return last;
}

describe('a ModelStreamInfer client that stops reading', () => {
  it('stops being read, the router keeps serving others, and every answer arrives once it reads again', async () => {
    const SENT = 20_000;
    // Its own connection, with small HTTP/2 windows, so unread answers fill them soon.
    const client = new GRPCInferenceServiceClient(cluster.router.address, credentials.createInsecure(), {
      'grpc.use_local_subchannel_pool': 1, 'grpc-node.flow_control_window': 65_535,
    });
    const stream = client.modelStreamInfer(new Metadata());
    const failed = new Promise<never>((_resolve, reject) => stream.on('error', reject));
    const ended = new Promise<void>((resolve) => stream.on('end', resolve));
    let received = 0;
    stream.on('data', (message: { errorMessage: string }) => {
      expect(message.errorMessage).toBe('');
      received += 1;
    });
    try {
      const before = await answeredSoFar();
      // Reading starts and stops at once: grpc-js then stops reading the HTTP/2 stream, as a
      // client that stops consuming does. (A grpc-js stream never read at all buffers every
      // message inside the client instead, which would test the client, not the router.)
      stream.pause();
      for (let index = 0; index < SENT; index++) stream.write(request);
      stream.end();
      // Without backpressure the router would answer all of them into its own buffers; with it,
      // it stops once the unread answers fill the windows and its in-flight bound.
      const answered = (await settledCount(1_500, 30_000)) - before;
      expect(answered).toBeLessThan(SENT / 2);
      expect(cluster.router.requests.inFlight).toBeLessThanOrEqual(64);
      const response = await cluster.infer({ modelName: 'iris', inputs: [{ ...request.inputs[0], shape: [1, 4], contents: fp32Contents([5.1, 3.5, 1.4, 0.2]) }] });
      expect(response.outputs[0].contents!.fp32Contents).toHaveLength(3);

      // Reading again drains the stream: nothing was dropped while it was paused.
      stream.resume();
      await Promise.race([ended, failed]);
      expect(received).toBe(SENT);
    } finally {
      stream.cancel();
      client.close();
    }
  }, 90_000);
});
