/**
 * Typed contents through a real router and executor: INT64 values beyond 2^53 reach the executor
 * exactly and INT64 outputs are answered exactly in int64_contents (read here from the response's
 * bytes, since the generated decoder stops at 2^53).
 */
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GraphBuilder, tensorAttribute } from '../../services/onnx/index.ts';
import { GRPCInferenceServiceService, ModelInferRequest, type InferTensorContents } from '../../services/protocol/generated/inference/grpc_service.ts';
import type { ExecuteBatch } from '../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { TasksClient } from '../../services/protocol/generated/nexus/router/v1/tasks.ts';
import { asContentsField } from '../../services/protocol/int64-contents.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

const BIG = BigInt64Array.of(2n ** 62n + 1n, -(2n ** 63n));
let cluster: Cluster;
let client: Client;
let tasks: InstanceType<typeof TasksClient>;

beforeAll(async () => {
  cluster = await startCluster();
  // y = x, and a constant output of values no JavaScript number holds.
  await cluster.store('ids', new GraphBuilder('ids')
    .input('x', 'INT64', [-1, 3]).node('Identity', ['x'], ['y']).output('y', 'INT64', [-1, 3])
    .node('Constant', [], ['big'], { value: tensorAttribute('INT64', [2], BIG) }).output('big', 'INT64', [2])
    .toBytes());
  await cluster.waitUntilReady('ids');
  client = new Client(cluster.router.address, credentials.createInsecure());
  tasks = new TasksClient(cluster.router.address, credentials.createInsecure());
}, 180_000);

afterAll(async () => {
  client?.close();
  tasks?.close();
  await cluster?.stop();
});

const contentsWith = (fields: Partial<InferTensorContents>): InferTensorContents => ({ ...fp32Contents([]), ...fields });
const idsRequest = (values: BigInt64Array): ModelInferRequest => ModelInferRequest.fromPartial({
  modelName: 'ids', inputs: [{ name: 'x', datatype: 'INT64', shape: [1, 3], contents: contentsWith({ int64Contents: asContentsField(values) }) }],
});

/** ModelInfer answered as bytes: the response, or the error. */
function inferBytes(request: ModelInferRequest): Promise<{ bytes?: Buffer; error?: ServiceError }> {
  return new Promise((resolve) => client.makeUnaryRequest(GRPCInferenceServiceService.modelInfer.path,
    (message: ModelInferRequest) => Buffer.from(ModelInferRequest.encode(message).finish()), (bytes: Buffer) => bytes,
    request, new Metadata(), { deadline: Date.now() + 30_000 }, (error, bytes) => resolve({ bytes, error: error ?? undefined })));
}

/** The int64_contents of each output of a ModelInferResponse, read straight from its bytes. */
function int64OutputsOf(bytes: Uint8Array): Record<string, bigint[]> {
  const reader = new BinaryReader(bytes);
  const outputs: Record<string, bigint[]> = {};
  const within = (end: number, visit: (field: number, wireType: number) => boolean) => {
    while (reader.pos < end) {
      const [field, wireType] = reader.tag();
      if (!visit(field, wireType)) reader.skip(wireType);
    }
  };
  // outputs = 5 { name = 1, contents = 5 { int64_contents = 3, packed } }
  within(reader.len, (field) => {
    if (field !== 5) return false;
    let name = '';
    const values: bigint[] = [];
    within(reader.uint32() + reader.pos, (tensorField) => {
      if (tensorField === 1) name = reader.string();
      else if (tensorField === 5) {
        within(reader.uint32() + reader.pos, (contentsField) => {
          if (contentsField !== 3) return false;
          for (const end = reader.uint32() + reader.pos; reader.pos < end;) values.push(BigInt(reader.int64()));
          return true;
        });
      } else return false;
      return true;
    });
    outputs[name] = values;
    return true;
  });
  return outputs;
}

describe('INT64 typed contents', () => {
  it('answers INT64 outputs exactly in int64_contents', async () => {
    const { bytes, error } = await inferBytes(idsRequest(BigInt64Array.of(1n, -2n, 2n ** 31n - 1n)));
    expect(error).toBeUndefined();
    expect(int64OutputsOf(bytes!)).toEqual({ y: [1n, -2n, 2n ** 31n - 1n], big: [...BIG] });
  });

  it('carries values beyond 2^53 to the executor exactly, from ModelInfer and from a task', async () => {
    // Calls through: the executor runs what it received.
    const spy = vi.spyOn(cluster.executors[0].state, 'execute');
    try {
      const values = BigInt64Array.of(2n ** 62n + 1n, -(2n ** 63n), 2n ** 63n - 1n);
      const { error } = await inferBytes(idsRequest(values));
      // The GPU computes integers in 32 bits: the executor, not the router's decoder, refuses them.
      expect(error?.code).toBe(status.INVALID_ARGUMENT);
      expect(error?.details).toMatch(/beyond the 32-bit integers the GPU computes with/);
      const inputsOf = (batch: ExecuteBatch) => new BigInt64Array(new Uint8Array(batch.inputs[0].data).buffer);
      expect(spy).toHaveBeenCalledTimes(1);
      expect(inputsOf(spy.mock.calls[0][0])).toEqual(values);

      const reversed = values.slice().reverse();
      await new Promise((resolve, reject) => tasks.submitTask({ request: idsRequest(reversed) }, (failed, answer) => (failed ? reject(failed) : resolve(answer))));
      await vi.waitFor(() => expect(spy).toHaveBeenCalledTimes(2), { timeout: 10_000 });
      expect(inputsOf(spy.mock.calls[1][0])).toEqual(reversed);
    } finally {
      spy.mockRestore();
    }
  });
});
