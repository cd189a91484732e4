/**
 * Typed contents through a real router and executor: INT64 values beyond 2^53 reach the executor
 * exactly and INT64 outputs are answered exactly in int64_contents (read here from the response's
 * bytes, since the generated decoder stops at 2^53), and INT8 / UINT8 / INT16 / UINT16 values
 * their datatype cannot hold are refused INVALID_ARGUMENT before anything runs.
 */
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GraphBuilder, tensorAttribute } from '../../services/onnx/index.ts';
import { GRPCInferenceServiceService, ModelInferRequest, type InferTensorContents, type ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
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
  // The executor takes none of these input datatypes, so only the router's checks answer them.
  const narrow = new GraphBuilder('narrow');
  for (const [name, datatype] of [['i8', 'INT8'], ['u8', 'UINT8'], ['i16', 'INT16'], ['u16', 'UINT16']] as const) {
    narrow.input(name, datatype, [-1, 2]).node('Cast', [name], [`${name}_out`], { to: 6 }).output(`${name}_out`, 'INT32', [-1, 2]);
  }
  await cluster.store('narrow', narrow.toBytes());
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

describe('narrow integer typed contents', () => {
  const valid = { i8: [-128, 127], u8: [0, 255], i16: [-32768, 32767], u16: [0, 65535] };
  const narrowRequest = (values: Record<string, number[]>) => ModelInferRequest.fromPartial({
    modelName: 'narrow',
    inputs: Object.entries({ ...valid, ...values }).map(([name, numbers]) => ({
      name, datatype: { i8: 'INT8', u8: 'UINT8', i16: 'INT16', u16: 'UINT16' }[name], shape: [1, 2],
      contents: contentsWith(name.startsWith('u') ? { uintContents: numbers } : { intContents: numbers }),
    })),
  });
  const infer = (request: ModelInferRequest) => new Promise<{ error?: ServiceError; response?: ModelInferResponse }>((resolve) =>
    cluster.inference.modelInfer(request, new Metadata(), { deadline: Date.now() + 30_000 }, (error, response) => resolve({ error: error ?? undefined, response })));

  it.each<[string, Record<string, number[]>, string]>([
    ['INT8 128', { i8: [0, 128] }, "input 'i8': value 128 at index 1 is outside INT8's range [-128, 127]"],
    ['INT8 -129', { i8: [-129, 0] }, "input 'i8': value -129 at index 0 is outside INT8's range [-128, 127]"],
    ['UINT8 256', { u8: [256, 0] }, "input 'u8': value 256 at index 0 is outside UINT8's range [0, 255]"],
    ['UINT8 2^32 - 1', { u8: [0, 4294967295] }, "input 'u8': value 4294967295 at index 1 is outside UINT8's range [0, 255]"],
    ['INT16 32768', { i16: [32768, 0] }, "input 'i16': value 32768 at index 0 is outside INT16's range [-32768, 32767]"],
    ['INT16 -32769', { i16: [0, -32769] }, "input 'i16': value -32769 at index 1 is outside INT16's range [-32768, 32767]"],
    ['UINT16 65536', { u16: [65536, 1] }, "input 'u16': value 65536 at index 0 is outside UINT16's range [0, 65535]"],
  ])('%s is INVALID_ARGUMENT naming the input, the value and the range', async (_case, values, details) => {
    const { error } = await infer(narrowRequest(values));
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toBe(details);
  });

  it('passes the values at the ends of each range on to the model', async () => {
    const { error, response } = await infer(narrowRequest({}));
    // The router's checks let them through; whether the executor takes these input datatypes is
    // its own business: it answers the model's outputs, or refuses the load naming the input.
    if (error) {
      expect(error.code).toBe(status.FAILED_PRECONDITION);
      expect(error.details).toMatch(/input 'i8' is INT8/);
    } else {
      expect(Object.fromEntries(response!.outputs.map((output) => [output.name, output.contents!.intContents])))
        .toEqual(Object.fromEntries(Object.entries(valid).map(([name, numbers]) => [`${name}_out`, numbers])));
    }
  });
});
