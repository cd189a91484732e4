/** KServe v2 JSON tensors and Triton's binary extension to and from the protocol's messages. */
import { describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/index.ts';
import type { ModelInferResponse } from '../../../services/protocol/generated/inference/grpc_service.ts';
import { bytesElements, inferRequestOfJson, jsonOfInferResponse, splitBytesElements } from '../../../services/router/http/kserve-json.ts';

const refusal = (work: () => unknown) => {
  try {
    work();
  } catch (error) {
    return { code: (error as NexusError).code, message: (error as Error).message };
  }
  throw new Error('no refusal');
};

describe('inferRequestOfJson', () => {
  it('turns nested or flat JSON data into raw little-endian contents, with parameters', () => {
    const { request } = inferRequestOfJson('iris', '2', {
      id: 'a', parameters: { priority: 'high', timeout: 5000, user: 'u1', binary_data_output: true },
      inputs: [
        { name: 'x', shape: [2, 2], datatype: 'FP32', data: [[1, 2], [3, 4.5]] },
        { name: 'n', shape: [2], datatype: 'INT64', data: [-1, 9007199254740991] },
        { name: 'b', shape: [2], datatype: 'BOOL', data: [true, false] },
        { name: 's', shape: [1], datatype: 'BYTES', data: ['hé'] },
      ],
    });
    expect(request).toMatchObject({ modelName: 'iris', modelVersion: '2', id: 'a', parameters: { priority: { stringParam: 'high' }, timeout: { int64Param: 5000 }, user: { stringParam: 'u1' } } });
    expect(request.parameters.binary_data_output).toBeUndefined();
    expect([...new Float32Array(request.rawInputContents[0].slice().buffer)]).toEqual([1, 2, 3, 4.5]);
    expect([...new BigInt64Array(request.rawInputContents[1].slice().buffer)]).toEqual([-1n, 9007199254740991n]);
    expect([...request.rawInputContents[2]]).toEqual([1, 0]);
    expect(splitBytesElements(request.rawInputContents[3]).map((element) => Buffer.from(element).toString())).toEqual(['hé']);
  });

  it('takes binary inputs from the bytes after the JSON header, in order', () => {
    const binary = Buffer.concat([Buffer.from(Float32Array.of(1, 2).buffer), Buffer.from(Uint16Array.of(0x3c00).buffer)]);
    const { request, binaryOutput } = inferRequestOfJson('m', '', {
      inputs: [
        { name: 'x', shape: [2], datatype: 'FP32', parameters: { binary_data_size: 8 } },
        { name: 'h', shape: [1], datatype: 'FP16', parameters: { binary_data_size: 2 } },
        { name: 'y', shape: [1], datatype: 'INT8', data: [-3] },
      ],
      outputs: [{ name: 'out', parameters: { binary_data: true } }, { name: 'other', parameters: { classification: 2 } }],
    }, binary);
    expect(request.rawInputContents.map((raw) => raw.byteLength)).toEqual([8, 2, 1]);
    expect(request.outputs).toEqual([{ name: 'out', parameters: {} }, { name: 'other', parameters: { classification: { int64Param: 2 } } }]);
    expect([binaryOutput('out'), binaryOutput('other')]).toEqual([true, false]);
  });

  it('refuses what does not fit, naming the input and the field', () => {
    const one = (input: object, binary?: Uint8Array) => refusal(() => inferRequestOfJson('m', '', { inputs: [input] }, binary));
    expect(one({ name: 'x', shape: [3], datatype: 'FP32', data: [1, 2] }).message).toBe("input 'x': data has 2 values, its shape [3] needs 3");
    expect(one({ name: 'x', shape: [1], datatype: 'INT8', data: [200] }).message).toContain("input 'x': data[0] is 200; INT8 takes integers in [-128, 127]");
    expect(one({ name: 'x', shape: [1], datatype: 'INT64', data: [2 ** 60] }).message).toContain('send binary data');
    expect(one({ name: 'x', shape: [1], datatype: 'BOOL', data: [1] }).message).toContain('true or false');
    expect(one({ name: 'x', shape: [1], datatype: 'FP16', data: [1] }).message).toContain('FP16, which JSON tensors do not carry');
    expect(one({ name: 'x', shape: [1], datatype: 'FP33', data: [1] }).message).toContain('datatype "FP33"');
    expect(one({ name: 'x', shape: [-1], datatype: 'FP32', data: [] }).message).toContain('shape must be a list of non-negative integers');
    expect(one({ name: 'x', shape: [2], datatype: 'FP32', parameters: { binary_data_size: 8 } }, new Uint8Array(4)).message).toContain('only 4 bytes');
    expect(refusal(() => inferRequestOfJson('m', '', { inputs: [] }, new Uint8Array(3))).message).toContain('add up to 0');
    expect(refusal(() => inferRequestOfJson('m', '', { inputs: 'x' })).code).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

const response = (outputs: Array<{ name: string; datatype: string; shape: number[]; raw: Uint8Array }>): ModelInferResponse => ({
  modelName: 'm', modelVersion: '3', id: 'r', parameters: { nexus_batch_size: { int64Param: 4 }, nexus_cache_hit: { boolParam: false } },
  outputs: outputs.map(({ name, datatype, shape }) => ({ name, datatype, shape, parameters: {}, contents: undefined })),
  rawOutputContents: outputs.map((output) => output.raw),
});

describe('jsonOfInferResponse', () => {
  it('writes each output as JSON values, 64-bit integers exactly, BYTES as strings', () => {
    const { header, binary } = jsonOfInferResponse(response([
      { name: 'f', datatype: 'FP32', shape: [2], raw: new Uint8Array(Float32Array.of(0.5, -1).buffer) },
      { name: 'i', datatype: 'INT64', shape: [2], raw: new Uint8Array(BigInt64Array.of(-5n, 2n ** 62n).buffer) },
      { name: 'b', datatype: 'BOOL', shape: [1], raw: Uint8Array.of(1) },
      { name: 's', datatype: 'BYTES', shape: [1], raw: bytesElements([Buffer.from('ok')]) },
    ]), () => false);
    expect(binary).toEqual([]);
    expect(JSON.stringify(header)).toBe('{"model_name":"m","model_version":"3","id":"r","parameters":{"nexus_batch_size":4,"nexus_cache_hit":false},"outputs":['
      + '{"name":"f","datatype":"FP32","shape":[2],"data":[0.5,-1]},{"name":"i","datatype":"INT64","shape":[2],"data":[-5,4611686018427387904]},'
      + '{"name":"b","datatype":"BOOL","shape":[1],"data":[true]},{"name":"s","datatype":"BYTES","shape":[1],"data":["ok"]}]}');
  });

  it('sends binary outputs after the header with their sizes, and refuses FP16 as JSON with FAILED_PRECONDITION', () => {
    const half = { name: 'h', datatype: 'FP16', shape: [1], raw: Uint8Array.of(0, 0x3c) };
    const { header, binary } = jsonOfInferResponse(response([half]), (name) => name === 'h');
    expect(header.outputs).toEqual([{ name: 'h', datatype: 'FP16', shape: [1], parameters: { binary_data_size: 2 } }]);
    expect(binary).toEqual([half.raw]);
    expect(refusal(() => jsonOfInferResponse(response([half]), () => false))).toMatchObject({ code: ErrorCode.FAILED_PRECONDITION, message: expect.stringContaining('binary_data') });
  });
});
