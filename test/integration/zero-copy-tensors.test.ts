/**
 * A large tensor crosses the router and the executor with its bytes copied only where they must
 * be: through the router (ModelInfer with raw_input_contents), the executor uploads the input
 * straight from the message it received (the GPU write's source is a view of that message's
 * buffer, so the write into the staging buffer is its one copy), because the router's encoding
 * puts the tensor at an aligned offset; a sender that does not align it gets the input copied
 * first. The answers agree bit for bit, and with the same product computed on the host.
 */
import { credentials, makeGenericClientConstructor, Metadata, type ClientDuplexStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GraphBuilder } from '../../services/onnx/builder.ts';
import {
  ExecutorClient, ExecutorService, RouterMessage, type BatchResult, type ExecutorMessage, type Tensor,
} from '../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { LARGE_BYTES, RECEIVED_PAYLOAD_OFFSET } from '../../services/protocol/wire-encoding.ts';
import { startCluster, type Cluster } from './harness.ts';

const ROWS = 16;
const K = 1024;
const N = 8;
const MODEL = 'wide_input';

// Exact in f32 whatever the order of the sums: small integers.
const x = Float32Array.from({ length: ROWS * K }, (_, index) => (index % 7) - 3);
const w = Float32Array.from({ length: K * N }, (_, index) => (index % 5) - 2);
const xBytes = new Uint8Array(x.buffer);

function hostProduct(): Float32Array {
  const y = new Float32Array(ROWS * N);
  for (let row = 0; row < ROWS; row++) {
    for (let column = 0; column < N; column++) {
      let sum = 0;
      for (let inner = 0; inner < K; inner++) sum += x[row * K + inner] * w[inner * N + column];
      y[row * N + column] = sum;
    }
  }
  return y;
}

const floatsOf = (bytes: Uint8Array) => new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));

/** A Connect client whose messages are encoded as ts-proto alone would: tensors wherever they fall. */
const UnalignedExecutorClient = makeGenericClientConstructor({
  connect: { ...ExecutorService.connect, requestSerialize: (message: RouterMessage) => Buffer.from(RouterMessage.encode(message).finish()) },
}, 'UnalignedExecutor') as unknown as typeof ExecutorClient;

/** One batch on a Connect stream of `client`. */
async function executeOn(client: ExecutorClient, batchId: number): Promise<BatchResult> {
  const call: ClientDuplexStream<RouterMessage, ExecutorMessage> = client.connect(new Metadata());
  call.on('error', () => {});
  try {
    return await new Promise<BatchResult>((resolve) => {
      call.on('data', (message: ExecutorMessage) => {
        if (message.batchResult?.batchId === batchId) resolve(message.batchResult);
      });
      call.write({ executeBatch: { batchId, modelName: MODEL, version: 1, deadlineUnixMs: 0, traceContext: {}, inputs: [{ name: 'x', datatype: 'FP32', shape: [ROWS, K], data: xBytes }] } });
    });
  } finally {
    call.end();
    client.close();
  }
}

/** Where the input's bytes lie in the message `batchId` encodes to, without alignment, as the executor receives it. */
function receivedOffset(batchId: number): number {
  const message = RouterMessage.encode({ executeBatch: {
    batchId, modelName: MODEL, version: 1, deadlineUnixMs: 0, traceContext: {}, inputs: [{ name: 'x', datatype: 'FP32', shape: [ROWS, K], data: xBytes }],
  } }).finish();
  return RECEIVED_PAYLOAD_OFFSET + Buffer.from(message).indexOf(Buffer.from(xBytes.subarray(0, 64)));
}

let cluster: Cluster;
/** The buffers the executor decoded RouterMessages from, and the sources of its GPU writes, in order. */
const received: Uint8Array[] = [];
const gpuWrites: Uint8Array[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  await cluster.store(MODEL, new GraphBuilder(MODEL)
    .input('x', 'FP32', [ROWS, K]).initializer('w', 'FP32', [K, N], w).node('MatMul', ['x', 'w'], ['y']).output('y', 'FP32', [ROWS, N])
    .toBytes({ opset: 17 }));
  await cluster.waitUntilReady(MODEL);
  const decode = RouterMessage.decode.bind(RouterMessage);
  vi.spyOn(RouterMessage, 'decode').mockImplementation((input, length) => {
    if (input instanceof Uint8Array) received.push(input);
    return decode(input, length);
  });
  const queue = cluster.executors[0].gpu.device.queue;
  const write = queue.writeBuffer.bind(queue);
  vi.spyOn(queue, 'writeBuffer').mockImplementation((buffer, offset, data, ...rest) => {
    if (ArrayBuffer.isView(data) && data.byteLength === xBytes.byteLength) gpuWrites.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    return write(buffer, offset, data, ...rest);
  });
}, 120_000);

afterAll(async () => {
  vi.restoreAllMocks();
  await cluster?.stop();
});

/** The last message the executor received and the last input it wrote to the GPU. */
function lastReceivedAndWritten(): { message: Uint8Array; upload: Uint8Array } {
  return { message: received.at(-1)!, upload: gpuWrites.at(-1)! };
}

describe('a large input', () => {
  it('is the size that takes the aligned encoding', () => {
    expect(xBytes.byteLength).toBeGreaterThanOrEqual(LARGE_BYTES);
  });

  it('through the router, reaches the GPU from the executor\'s received message, without a copy', async () => {
    const response = await cluster.infer({
      modelName: MODEL, inputs: [{ name: 'x', datatype: 'FP32', shape: [ROWS, K], parameters: {}, contents: undefined }], rawInputContents: [xBytes],
    });
    const { message, upload } = lastReceivedAndWritten();
    expect(upload.buffer).toBe(message.buffer);
    expect(upload.byteOffset % 8).toBe(0);
    expect(floatsOf(response.rawOutputContents[0])).toEqual(hostProduct());
  });

  it('sent misaligned, is copied before the upload, and answered bit for bit the same', async () => {
    // A batch id whose varint length puts the tensor off a 4-byte boundary in the received buffer.
    const batchId = [1, 200, 40_000, 3_000_000].find((id) => receivedOffset(id) % 4 !== 0)!;
    const misaligned = await executeOn(new UnalignedExecutorClient(cluster.executors[0].address, credentials.createInsecure()), batchId);
    const { message, upload } = lastReceivedAndWritten();
    expect(upload.buffer).not.toBe(message.buffer);
    expect(Buffer.from(upload).equals(Buffer.from(xBytes))).toBe(true);

    const aligned = await executeOn(new ExecutorClient(cluster.executors[0].address, credentials.createInsecure()), batchId);
    expect(lastReceivedAndWritten().upload.buffer).toBe(lastReceivedAndWritten().message.buffer);
    const outputOf = (result: BatchResult): Tensor => result.outputs[0];
    expect(Buffer.from(outputOf(misaligned).data).equals(Buffer.from(outputOf(aligned).data))).toBe(true);
    expect(floatsOf(outputOf(aligned).data)).toEqual(hostProduct());
  });
});
