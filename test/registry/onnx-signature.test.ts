/**
 * The streaming ONNX signature reader gives exactly what decoding the whole model gives, however
 * the bytes are cut into chunks, holds none of the initializer data, and refuses what is not ONNX.
 */
import { describe, expect, it } from 'vitest';
import { decodeModel, GraphBuilder, signatureOf } from '../../services/onnx/index.ts';
import { ErrorCode } from '../../services/domain/errors.ts';
import { OnnxSignatureReader } from '../../services/registry/core/onnx-signature.ts';
import { hugeOnnxModel } from './fixtures.ts';

/** A model with a batch input, an initializer that older exporters also list as an input, and two outputs. */
function sampleModel(): Uint8Array {
  return new GraphBuilder('sample')
    .input('features', 'FP32', [-1, 3])
    .input('scale', 'FP32', [3])
    .initializer('w', 'FP32', [3, 2], new Float32Array([1, 2, 3, 4, 5, 6]))
    .initializer('scale', 'FP32', [3], new Float32Array([1, 1, 1]))
    .node('Mul', ['features', 'scale'], ['scaled'])
    .node('MatMul', ['scaled', 'w'], ['logits'])
    .node('Softmax', ['logits'], ['probabilities'])
    .output('logits', 'FP32', [-1, 2])
    .output('probabilities', 'FP32', [-1, 2])
    .toBytes();
}

function readInChunks(bytes: Uint8Array, size: number) {
  const reader = new OnnxSignatureReader();
  for (let at = 0; at < bytes.byteLength; at += size) reader.push(bytes.subarray(at, at + size));
  return reader.finish();
}

describe('OnnxSignatureReader', () => {
  it('matches the whole-model decoder for every chunk size from 1 byte to the whole file', () => {
    const bytes = sampleModel();
    const expected = signatureOf(decodeModel(bytes));
    expect(expected.inputs.map((input) => input.name)).toEqual(['features']); // the initializer is not an input
    for (const size of [1, 2, 3, 5, 7, 16, 64, 1000, bytes.byteLength]) {
      expect(readInChunks(bytes, size)).toEqual(expected);
    }
  });

  it('reads a model with a 64 MiB initializer without holding it', async () => {
    const model = hugeOnnxModel(64 * 1024 * 1024);
    const reader = new OnnxSignatureReader();
    const before = process.memoryUsage().arrayBuffers;
    let peak = 0;
    for await (const chunk of model.chunks()) {
      reader.push(chunk);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
    }
    expect(reader.finish()).toEqual(model.signature);
    // The chunks come from one reused 1 MiB block; nothing of the 64 MiB accumulates.
    expect(peak).toBeLessThan(8 * 1024 * 1024);
  });

  it.each([
    ['random bytes', Uint8Array.from({ length: 300 }, (_, index) => (index * 7919) % 251)],
    ['a truncated model', sampleModel().subarray(0, 40)],
    ['text', new TextEncoder().encode('this is not a model, just a README\n')],
    ['an empty file', new Uint8Array(0)],
  ])('refuses %s with INVALID_ARGUMENT', (_, bytes) => {
    expect(() => readInChunks(bytes, 16)).toThrow(expect.objectContaining({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/ONNX/) }));
  });
});
