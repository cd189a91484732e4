/**
 * The serializer of every gRPC message: small messages byte for byte as the generated encoder
 * writes them, large ones (a tensor of LARGE_BYTES or more) in one exact-size buffer that decodes
 * to the same message, with every kind of field the generated encoders write; aligned, each
 * large field lies at a multiple of 8 in the buffer grpc-js would decode it from, whatever the
 * bytes before it.
 */
import { describe, expect, it } from 'vitest';
import { ModelInferRequest, ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { ExecutorMessage, RouterMessage } from '../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { ModelVersion } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { encodeForWire, FIELD_ALIGNMENT, LARGE_BYTES, paddingFor, RECEIVED_PAYLOAD_OFFSET } from '../../services/protocol/wire-encoding.ts';

/** Seeded pseudo-random bytes: no two seeds share a run of them, so offsetOf finds the right one. */
function pattern(length: number, seed = 1): Uint8Array {
  let state = 0x9e3779b9 ^ (seed * 0x85ebca6b);
  return Uint8Array.from({ length }, () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state & 0xff;
  });
}

/** A request with every kind of scalar the inference messages carry: strings, negative and 64-bit integers, floats, bools, maps. */
function inferRequest(raw: Uint8Array[]): ModelInferRequest {
  return ModelInferRequest.fromPartial({
    modelName: 'm\u00e9t\u00e9o-\u{1F600}', modelVersion: '3', id: 'x'.repeat(200),
    parameters: { priority: { int64Param: -5 }, big: { uint64Param: 2 ** 40 }, on: { boolParam: true }, scale: { doubleParam: -0.125 }, label: { stringParam: 'é' } },
    inputs: raw.map((bytes, index) => ({ name: `input_${index}`, datatype: 'FP32', shape: [1, bytes.byteLength / 4], parameters: {} })),
    outputs: [{ name: 'y', parameters: { classification: { int64Param: 3 } } }],
    rawInputContents: raw,
  });
}

function executeBatch(name: string, data: Uint8Array): RouterMessage {
  return RouterMessage.fromPartial({
    executeBatch: {
      batchId: 2 ** 33, modelName: name, version: 7, deadlineUnixMs: Date.now(), traceContext: { traceparent: '00-abc-def-01' },
      inputs: [{ name: 'x', datatype: 'FP32', shape: [data.byteLength / 4096, 1024], data }, { name: 'mask', datatype: 'BOOL', shape: [3], data: pattern(3) }],
    },
  });
}

/** The encoded bytes as a plain Uint8Array (decoded, a Buffer's fields would be Buffers). */
const plainBytes = (encoded: Buffer) => new Uint8Array(encoded.buffer, encoded.byteOffset, encoded.byteLength);

/** Where `data`'s bytes begin in an encoded message (they are unique enough to find). */
function offsetOf(encoded: Uint8Array, data: Uint8Array): number {
  const at = Buffer.from(encoded).indexOf(Buffer.from(data.subarray(0, 64)));
  expect(at).toBeGreaterThanOrEqual(0);
  return at;
}

describe('small messages', () => {
  it('are the generated encoder\'s bytes', () => {
    const messages: Array<[{ encode(message: never): { finish(): Uint8Array } }, unknown]> = [
      [ModelInferRequest, inferRequest([pattern(16)])],
      [RouterMessage, executeBatch('iris', pattern(4096))],
      [RouterMessage, RouterMessage.fromPartial({ loadModel: { requestId: 9, version: ModelVersion.fromPartial({ modelName: 'iris', version: 2, sizeBytes: 2 ** 40, tags: { a: 'b' } }), maxBatchSize: 32 } })],
    ];
    for (const [type, message] of messages) {
      expect(encodeForWire(type as never, message)).toEqual(Buffer.from(type.encode(message as never).finish()));
    }
  });
});

describe('large messages', () => {
  it('decode to the same message, their bytes once each in a buffer of the exact size', () => {
    const request = inferRequest([pattern(LARGE_BYTES), pattern(12, 2), pattern(1 << 20, 3)]);
    const encoded = encodeForWire(ModelInferRequest, request);
    expect(encoded).toEqual(Buffer.from(ModelInferRequest.encode(request).finish()));
    expect(encoded.buffer.byteLength).toBe(encoded.byteLength);
    expect(ModelInferRequest.decode(plainBytes(encoded))).toEqual(request);

    const response = ModelInferResponse.fromPartial({ modelName: 'm', id: 'r', parameters: { nexus_gpu_us: { int64Param: 12 } }, outputs: [{ name: 'y', datatype: 'FP32', shape: [256, 1024] }], rawOutputContents: [pattern(1 << 20)] });
    expect(ModelInferResponse.decode(plainBytes(encodeForWire(ModelInferResponse, response)))).toEqual(response);
  });

  it('aligned, put each large field at a multiple of 8 in the received buffer, and decode to the same message', () => {
    const data = pattern(256 * 1024, 5);
    // Names of every length shift the tensor's bytes through every residue.
    for (let length = 1; length <= FIELD_ALIGNMENT * 2; length++) {
      const message = executeBatch('m'.repeat(length), data);
      const plain = encodeForWire(RouterMessage, message);
      const aligned = encodeForWire(RouterMessage, message, { align: true });
      expect((RECEIVED_PAYLOAD_OFFSET + offsetOf(aligned, data)) % FIELD_ALIGNMENT).toBe(0);
      expect(aligned.byteLength - plain.byteLength).toBe(paddingFor(offsetOf(plain, data)));
      expect(RouterMessage.decode(plainBytes(aligned))).toEqual(message);
    }
  });

  it('aligned, keep every field of a chunked result and each large one aligned', () => {
    const tensors = [0, 1, 2].map((outputIndex) => ({
      outputIndex, name: `out_${outputIndex}`, datatype: 'FP32', shape: [64, 1024 + outputIndex], totalBytes: 3 << 20, byteOffset: outputIndex << 20,
      data: pattern(LARGE_BYTES + outputIndex * 4 + 1, outputIndex),
    }));
    const message = ExecutorMessage.fromPartial({ batchResult: { batchId: 4, errorCode: 0, batchSize: 64, gpuNs: 2 ** 45, executeNs: 3, chunk: { index: 1, count: 3, tensors } } });
    const aligned = encodeForWire(ExecutorMessage, message, { align: true });
    for (const tensor of tensors) expect((RECEIVED_PAYLOAD_OFFSET + offsetOf(aligned, tensor.data)) % FIELD_ALIGNMENT).toBe(0);
    expect(ExecutorMessage.decode(plainBytes(aligned))).toEqual(message);
  });

  it('refuse a value the generated encoder refuses', () => {
    const message = executeBatch('m', pattern(LARGE_BYTES));
    message.executeBatch!.version = -1;
    expect(() => encodeForWire(RouterMessage, message)).toThrow(/invalid uint32: -1/);
  });
});
