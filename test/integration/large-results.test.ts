/**
 * Batch results larger than the router↔executor message limit travel in chunks: an executor with
 * a 16 KiB message limit answers a 32 KiB result through the router with the right numbers, and a
 * small batch on the same stream at the same time is unaffected.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startExecutor, type RunningExecutor } from '../../services/executor/service/index.ts';
import { GraphBuilder } from '../../services/onnx/builder.ts';
import { GRPCInferenceServiceClient, type ModelInferRequest, type ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { startRouter, type RunningRouter } from '../../services/router/index.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

/** The largest message the executor sends: an 8-row result of the wide model (32 KiB) is over it. */
const MESSAGE_LIMIT = 16 * 1024;
const WIDTH = 1024;

/** w[i][j] = (i + 1) / 4 + j / 1024: every output column differs. */
const weight = (i: number, j: number) => (i + 1) / 4 + j / 1024;

/** x[-1, 4] · w[4, 1024]: 4 KiB of output per row. */
function wideModel(): Uint8Array {
  const w = new Float32Array(4 * WIDTH).map((_, index) => weight(Math.floor(index / WIDTH), index % WIDTH));
  return new GraphBuilder('wide')
    .input('x', 'FP32', [-1, 4])
    .initializer('w', 'FP32', [4, WIDTH], w)
    .node('MatMul', ['x', 'w'], ['y'], {}, 'widen')
    .output('y', 'FP32', [-1, WIDTH])
    .toBytes({ opset: 17 });
}

function smallModel(): Uint8Array {
  return new GraphBuilder('small').input('x', 'FP32', [-1, 4]).node('Relu', ['x'], ['y']).output('y', 'FP32', [-1, 4]).toBytes({ opset: 17 });
}

let cluster: Cluster;
let executor: RunningExecutor;
let router: RunningRouter;
let client: GRPCInferenceServiceClient;

function infer(modelName: string, rows: number[][]): Promise<ModelInferResponse> {
  const request: ModelInferRequest = {
    modelName, modelVersion: '', id: '', parameters: {}, outputs: [], rawInputContents: [],
    inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, 4], parameters: {}, contents: fp32Contents(rows.flat()) }],
  };
  return new Promise((resolve, reject) => {
    client.modelInfer(request, new Metadata(), { deadline: Date.now() + 60_000 }, (error: ServiceError | null, response: ModelInferResponse) =>
      (error ? reject(error) : resolve(response)));
  });
}

beforeAll(async () => {
  // The cluster's registry and CLI store the models; this test's own executor and router serve them.
  cluster = await startCluster();
  await cluster.store('wide', wideModel());
  await cluster.store('small', smallModel());
  executor = await startExecutor({ registryAddress: cluster.registry.address, cacheDir: join(cluster.dataDir, 'small-limit-cache'), maxMessageBytes: MESSAGE_LIMIT });
  router = await startRouter({ address: '127.0.0.1:0', insecure: true, registryAddress: cluster.registry.address, executorAddresses: [executor.address] });
  client = new GRPCInferenceServiceClient(router.address, credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  client?.close();
  await router?.shutdown(1000);
  await executor?.shutdown(1000);
  await cluster?.stop();
});

describe('a batch result over the message limit', () => {
  it('comes back in chunks with the right numbers, while a small batch on the same stream is answered unaffected', async () => {
    const rows = Array.from({ length: 8 }, (_, row) => [row + 1, -row, 0.5, 2]);
    const [large, small] = await Promise.all([infer('wide', rows), infer('small', [[1, -2, 3, -4]])]);
    expect(large.outputs[0].shape).toEqual([8, WIDTH]);
    const values = large.outputs[0].contents!.fp32Contents;
    expect(values).toHaveLength(8 * WIDTH);
    rows.forEach((x, row) => {
      for (const column of [0, 1, 511, WIDTH - 1]) {
        const expected = x.reduce((sum, value, i) => sum + value * weight(i, column), 0);
        expect(values[row * WIDTH + column]).toBeCloseTo(expected, 3);
      }
    });
    expect(small.outputs[0].contents!.fp32Contents).toEqual([1, 0, 3, 0]);
    // Once more: the stream is still good after a chunked result.
    expect((await infer('wide', rows.slice(0, 2))).outputs[0].contents!.fp32Contents[WIDTH]).toBeCloseTo(rows[1].reduce((sum, value, i) => sum + value * weight(i, 0), 0), 3);
  });
});
