/**
 * The exact decoder of requests carrying INT64 / UINT64 typed contents: every wire form of the
 * repeated fields (packed, one value a tag, several packed runs), the generated decoder's rules
 * kept (the last `contents` of an input and the last `request` of a task win), other inputs
 * untouched, and shapes or parameters beyond ±(2^53 - 1) refused by name.
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { describe, expect, it } from 'vitest';
import { GRPCInferenceServiceService, ModelInferRequest } from '../../services/protocol/generated/inference/grpc_service.ts';
import { SubmitTaskRequest, TasksService } from '../../services/protocol/generated/nexus/router/v1/tasks.ts';
import { exactDecoderFor, FieldOutOfRange } from '../../services/protocol/int64-contents.ts';

const decodeInfer = exactDecoderFor(GRPCInferenceServiceService.modelInfer.path)!;
const decodeTask = exactDecoderFor(TasksService.submitTask.path)!;
const BIG = 2n ** 62n + 1n;

/** InferTensorContents bytes: `field` 3 (int64) or 5 (uint64), `values` packed into one run each. */
function contents(field: 3 | 5, ...runs: bigint[][]): BinaryWriter {
  const writer = new BinaryWriter();
  for (const run of runs) {
    writer.uint32((field << 3) | 2).fork();
    for (const value of run) (field === 3 ? writer.int64(value) : writer.uint64(value));
    writer.join();
  }
  return writer;
}

const input = (name: string, contentsBytes: Uint8Array, shape = [1]) => {
  const writer = new BinaryWriter().uint32(10).string(name).uint32(18).string('INT64').uint32(26).fork();
  for (const dim of shape) writer.int64(dim);
  return writer.join().uint32(42).bytes(contentsBytes);
};

const request = (...inputs: BinaryWriter[]) => {
  const writer = new BinaryWriter().uint32(10).string('m');
  for (const tensor of inputs) writer.uint32(42).bytes(tensor.finish());
  return writer.finish();
};

describe('exact INT64 / UINT64 contents', () => {
  it('decodes packed runs, several runs of one field and one value per tag, in order', () => {
    const unpacked = new BinaryWriter().uint32(24).int64(-(2n ** 63n)).uint32(24).int64(7n);
    const decoded = decodeInfer(request(
      input('a', contents(3, [BIG, 1n], [2n ** 63n - 1n]).finish()),
      input('b', unpacked.finish()),
      input('c', contents(5, [2n ** 64n - 1n, 0n]).finish()),
    )) as ModelInferRequest;
    expect(decoded.inputs.map((tensor) => tensor.name)).toEqual(['a', 'b', 'c']);
    expect(decoded.inputs[0].contents!.int64Contents).toEqual(BigInt64Array.of(BIG, 1n, 2n ** 63n - 1n));
    expect(decoded.inputs[1].contents!.int64Contents).toEqual(BigInt64Array.of(-(2n ** 63n), 7n));
    expect(decoded.inputs[2].contents!.uint64Contents).toEqual(BigUint64Array.of(2n ** 64n - 1n, 0n));
    expect(decoded.inputs[0].shape).toEqual([1]);
  });

  it('leaves other contents as the generated decoder reads them', () => {
    const fp32 = new BinaryWriter().uint32(50).fork().float(1.5).float(2).join();
    const decoded = decodeInfer(request(input('big', contents(3, [BIG]).finish()), input('f', fp32.finish()))) as ModelInferRequest;
    expect(decoded.inputs[1].contents!.fp32Contents).toEqual([1.5, 2]);
    expect(decoded.inputs[1].contents!.int64Contents).toEqual([]);
  });

  it('keeps the last contents of an input, as the generated decoder does', () => {
    const tensor = input('a', contents(3, [BIG, BIG]).finish()).uint32(42).bytes(contents(3, [-BIG]).finish());
    const decoded = decodeInfer(request(tensor)) as ModelInferRequest;
    expect(decoded.inputs[0].contents!.int64Contents).toEqual(BigInt64Array.of(-BIG));
  });

  it('decodes the request of a task, the last one when there are two', () => {
    const first = request(input('a', contents(5, [2n ** 64n - 1n]).finish()));
    const second = request(input('b', contents(3, [5n]).finish()), input('c', contents(3, [BIG]).finish()));
    const bytes = new BinaryWriter().uint32(10).bytes(first).uint32(10).bytes(second).finish();
    const decoded = decodeTask(bytes) as SubmitTaskRequest;
    expect(decoded.request!.inputs.map((tensor) => tensor.name)).toEqual(['b', 'c']);
    expect(decoded.request!.inputs[1].contents!.int64Contents).toEqual(BigInt64Array.of(BIG));
  });

  it.each<[string, () => unknown, string]>([
    ['a dimension', () => decodeInfer(request(input('a', new Uint8Array(), [2, 2 ** 53]))), 'inputs[0].shape[1] is 9007199254740992'],
    ['a dimension of a task', () => decodeTask(new BinaryWriter().uint32(10).bytes(request(input('a', new Uint8Array()), input('b', new Uint8Array(), [-(2 ** 60)]))).finish()),
      'request.inputs[1].shape[0] is -1152921504606846976'],
    ['a requested output parameter', () => {
      const parameter = new BinaryWriter().uint32(16).int64(-BIG).finish();
      // The key after the value: the message still names it.
      const entry = new BinaryWriter().uint32(18).bytes(parameter).uint32(10).string('k').finish();
      const output = new BinaryWriter().uint32(10).string('y').uint32(18).bytes(entry).finish();
      return decodeInfer(new BinaryWriter().uint32(10).string('m').uint32(50).bytes(output).finish());
    }, 'outputs[0].parameters["k"].int64_param is -4611686018427387905'],
  ])('refuses %s beyond ±(2^53 - 1) by name', (_case, decode, message) => {
    expect(decode).toThrow(FieldOutOfRange);
    expect(decode).toThrow(message);
  });

  it('only the methods carrying typed contents have an exact decoder', () => {
    expect(exactDecoderFor(GRPCInferenceServiceService.modelStreamInfer.path)).toBeDefined();
    expect(exactDecoderFor(GRPCInferenceServiceService.modelMetadata.path)).toBeUndefined();
    expect(exactDecoderFor(TasksService.getTask.path)).toBeUndefined();
  });
});
