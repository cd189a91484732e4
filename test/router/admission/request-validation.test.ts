import { describe, expect, it } from 'vitest';
import type { InferTensorContents, ModelInferRequest } from '../../../services/protocol/generated/inference/grpc_service.ts';
import { validateInferRequest } from '../../../services/router/admission/request-validation.ts';
import type { TensorSpec } from '../../../services/onnx/index.ts';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { asContentsField } from '../../../services/protocol/int64-contents.ts';
import { inferResponseOf } from '../../../services/router/request-path/infer-response.ts';
import { ModelVersion } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';

const signature = {
  inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }] as TensorSpec[],
  outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }] as TensorSpec[],
};

const contents = (fp32: number[]): InferTensorContents => ({
  boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [],
  fp32Contents: fp32, fp64Contents: [], bytesContents: [],
});

const inferRequest = (overrides: Partial<ModelInferRequest> = {}): ModelInferRequest => ({
  modelName: 'iris', modelVersion: '', id: 'r1', parameters: {}, outputs: [], rawInputContents: [],
  inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 4], parameters: {}, contents: contents([1, 2, 3, 4, 5, 6, 7, 8]) }],
  ...overrides,
});

function rejection(request: ModelInferRequest): NexusError {
  try {
    validateInferRequest(request, signature, 32);
  } catch (error) {
    return error as NexusError;
  }
  throw new Error('expected the request to be rejected');
}

describe('validateInferRequest', () => {
  it('accepts typed contents and converts them to little-endian bytes', () => {
    const validated = validateInferRequest(inferRequest(), signature, 32);
    expect(validated.rows).toBe(2);
    expect(validated.rawOutput).toBe(false);
    expect(validated.outputNames).toEqual(['probabilities']);
    expect(Array.from(new Float32Array(new Uint8Array(validated.inputs[0].data).buffer))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('accepts zero rows: an empty batch dimension is a valid tensor', () => {
    const validated = validateInferRequest(inferRequest({
      inputs: [{ name: 'features', datatype: 'FP32', shape: [0, 4], parameters: {}, contents: contents([]) }],
    }), signature, 32);
    expect(validated.rows).toBe(0);
    expect(validated.inputs[0].data.byteLength).toBe(0);
  });

  it('accepts raw contents and answers raw', () => {
    const raw = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
    const validated = validateInferRequest(inferRequest({
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: undefined }],
      rawInputContents: [raw],
    }), signature, 32);
    expect(validated.rawOutput).toBe(true);
    expect(validated.inputs[0].data).toEqual(raw);
  });

  it.each([
    ['a wrong datatype', { inputs: [{ name: 'features', datatype: 'INT32', shape: [1, 4], parameters: {}, contents: contents([]) }] }, /must be FP32, got INT32/],
    ['a wrong shape', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 5], parameters: {}, contents: contents([1, 2, 3, 4, 5]) }] }, /shape \[1,5\].*expects \[-1,4\]/],
    ['a wrong rank', { inputs: [{ name: 'features', datatype: 'FP32', shape: [4], parameters: {}, contents: contents([1, 2, 3, 4]) }] }, /shape \[4\]/],
    ['too few values', { inputs: [{ name: 'features', datatype: 'FP32', shape: [2, 4], parameters: {}, contents: contents([1, 2, 3]) }] }, /fp32_contents has 3 values, its shape needs 8/],
    ['values in the wrong field', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: { ...contents([]), intContents: [1, 2, 3, 4] } }] }, /belong in contents.fp32_contents, not contents.int_contents/],
    ['a missing input', { inputs: [] }, /missing input 'features'/],
    ['an extra input', { inputs: [...inferRequest().inputs, { name: 'bogus', datatype: 'FP32', shape: [2, 4], parameters: {}, contents: contents([]) }] }, /unexpected input 'bogus'/],
    ['a duplicated input', { inputs: [...inferRequest().inputs, ...inferRequest().inputs] }, /appears twice/],
    ['raw contents of the wrong length', {
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: undefined }],
      rawInputContents: [new Uint8Array(15)],
    }, /raw_input_contents\[0\] for input 'features' has 15 bytes.*needs 16/],
    ['raw and typed contents together', {
      rawInputContents: [new Uint8Array(32)],
    }, /contents must not be set when raw_input_contents is used/],
    ['an unknown requested output', { outputs: [{ name: 'logits', parameters: {} }] }, /requested output 'logits' does not exist/],
    ['a zero-size dimension where the signature fixes it', { inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 0], parameters: {}, contents: contents([]) }] }, /shape \[1,0\]/],
  ] as Array<[string, Partial<ModelInferRequest>, RegExp]>)('rejects %s with INVALID_ARGUMENT naming the problem', (_, overrides, message) => {
    const error = rejection(inferRequest(overrides));
    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.message).toMatch(message);
  });

  it('rejects a request larger than the max batch size', () => {
    const error = rejection(inferRequest({
      inputs: [{ name: 'features', datatype: 'FP32', shape: [40, 4], parameters: {}, contents: contents(new Array(160).fill(0)) }],
    }));
    expect(error.message).toMatch(/40 rows.*max batch size 32/);
  });

  describe('INT64 and UINT64 beyond 2^53, exactly', () => {
    const wide = {
      inputs: [{ name: 'ids', datatype: 'INT64', shape: [-1, 2] }, { name: 'hashes', datatype: 'UINT64', shape: [-1, 2] }] as TensorSpec[],
      outputs: [{ name: 'ids_out', datatype: 'INT64', shape: [-1, 2] }, { name: 'hashes_out', datatype: 'UINT64', shape: [-1, 2] }] as TensorSpec[],
    };
    const ids = BigInt64Array.of(2n ** 62n + 1n, -(2n ** 63n));
    const hashes = BigUint64Array.of(2n ** 64n - 1n, 2n ** 53n + 1n);
    const wideRequest = (idValues: readonly number[] | BigInt64Array, hashValues: readonly number[] | BigUint64Array) => inferRequest({
      inputs: [
        { name: 'ids', datatype: 'INT64', shape: [1, 2], parameters: {}, contents: { ...contents([]), int64Contents: idValues instanceof BigInt64Array ? asContentsField(idValues) : [...idValues] } },
        { name: 'hashes', datatype: 'UINT64', shape: [1, 2], parameters: {}, contents: { ...contents([]), uint64Contents: hashValues instanceof BigUint64Array ? asContentsField(hashValues) : [...hashValues] } },
      ],
    });

    it('turns exact contents into their bytes, and numbers as before', () => {
      const exact = validateInferRequest(wideRequest(ids, hashes), wide, 8);
      expect(new BigInt64Array(new Uint8Array(exact.inputs[0].data).buffer)).toEqual(ids);
      expect(new BigUint64Array(new Uint8Array(exact.inputs[1].data).buffer)).toEqual(hashes);
      const numbers = validateInferRequest(wideRequest([-3, 2 ** 53 - 1], [0, 7]), wide, 8);
      expect(new BigInt64Array(new Uint8Array(numbers.inputs[0].data).buffer)).toEqual(BigInt64Array.of(-3n, 2n ** 53n - 1n));
    });

    it('refuses exact contents in the wrong field, or of the wrong count', () => {
      const misplaced = inferRequest({ inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: { ...contents([]), int64Contents: asContentsField(ids) } }] });
      expect(rejection(misplaced).message).toMatch(/belong in contents.fp32_contents, not contents.int64_contents/);
      const raw = inferRequest({ inputs: [{ ...misplaced.inputs[0], contents: { ...contents([]), int64Contents: asContentsField(ids) } }], rawInputContents: [new Uint8Array(16)] });
      expect(rejection(raw).message).toMatch(/contents must not be set when raw_input_contents is used/);
      let error: unknown;
      try {
        validateInferRequest(wideRequest(BigInt64Array.of(1n), hashes), wide, 8);
      } catch (caught) {
        error = caught;
      }
      expect((error as NexusError).message).toMatch(/contents.int64_contents has 1 values, its shape needs 2/);
    });

    it('answers INT64 and UINT64 outputs exactly in typed contents', () => {
      const validated = validateInferRequest(wideRequest(ids, hashes), wide, 8);
      const outputs = new Map([
        ['ids_out', { name: 'ids_out', datatype: 'INT64', shape: [1, 2], data: new Uint8Array(ids.buffer) }],
        ['hashes_out', { name: 'hashes_out', datatype: 'UINT64', shape: [1, 2], data: new Uint8Array(hashes.buffer) }],
      ]);
      const response = inferResponseOf(ModelVersion.fromPartial({ modelName: 'wide', version: 1 }), 'r', validated, outputs, {});
      expect([...response.outputs[0].contents!.int64Contents]).toEqual([...ids]);
      expect([...response.outputs[1].contents!.uint64Contents]).toEqual([...hashes]);
    });
  });

  it('gives stackable requests equal shape keys', () => {
    const one = validateInferRequest(inferRequest(), signature, 32);
    const other = validateInferRequest(inferRequest({
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: contents([1, 2, 3, 4]) }],
    }), signature, 32);
    expect(one.shapeKey).toBe(other.shapeKey);
  });
});
