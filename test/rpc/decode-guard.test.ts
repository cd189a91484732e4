/**
 * Bytes that do not decode as the method's request, or that carry a shape or parameter beyond
 * what the field holds, are answered INVALID_ARGUMENT with the reason, for unary and streaming
 * methods alike; INT64 / UINT64 tensor contents beyond 2^53 reach the handler exactly; the server
 * keeps serving well-formed calls.
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { Client, credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GRPCInferenceServiceService, ModelInferRequest, ModelInferResponse, ModelStreamInferResponse,
  type ModelInferRequest as Request,
} from '../../services/protocol/generated/inference/grpc_service.ts';
import { unary } from '../../services/rpc/handlers.ts';
import { startGrpcServer, type RunningServer } from '../../services/rpc/server.ts';
import { createLogger } from '../../services/telemetry/logger.ts';

const logger = createLogger('test');

const INFER = '/inference.GRPCInferenceService/ModelInfer';
const STREAM = '/inference.GRPCInferenceService/ModelStreamInfer';
const identity = (bytes: Buffer) => bytes;

let server: RunningServer;
let client: Client;
let handled = 0;
let lastRequest: Request | undefined;

const echo = (request: Request): ModelInferResponse => ({
  modelName: request.modelName, modelVersion: '', id: request.id, parameters: {}, outputs: [], rawOutputContents: [],
});

beforeAll(async () => {
  server = await startGrpcServer({
    address: '127.0.0.1:0',
    services: [{
      name: 'inference.GRPCInferenceService',
      protoFile: 'inference/grpc_service.proto',
      definition: GRPCInferenceServiceService,
      implementation: {
        // Unary requests are checked by the handler wrapper every service uses.
        modelInfer: unary('ModelInfer', logger, async (request: Request) => {
          handled += 1;
          lastRequest = request;
          return echo(request);
        }),
        modelStreamInfer: (call: NodeJS.EventEmitter & { write(message: unknown): void; end(): void }) => {
          call.on('data', (request: Request) => {
            handled += 1;
            lastRequest = request;
            call.write({ errorMessage: '', inferResponse: echo(request) });
          });
          call.on('end', () => call.end());
        },
      },
    }],
  });
  client = new Client(server.address, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await server?.shutdown(0);
});

function unaryBytes(bytes: Uint8Array): Promise<{ error: ServiceError | null; response?: ModelInferResponse }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(INFER, identity, (reply: Buffer) => ModelInferResponse.decode(reply), Buffer.from(bytes),
      (error, response) => resolve({ error: error ?? null, response }));
  });
}

/** A ModelInferRequest whose first input has one dimension of `dim` (written as a raw varint). */
function requestWithDim(dim: bigint): Uint8Array {
  const tensor = new BinaryWriter().uint32(10).string('x').uint32(18).string('FP32');
  tensor.uint32(26).fork().int64(dim).join();
  return new BinaryWriter().uint32(10).string('iris').uint32(42).bytes(tensor.finish()).finish();
}

const wellFormed = () => ModelInferRequest.encode(ModelInferRequest.fromPartial({ modelName: 'iris', id: 'ok' })).finish();

describe('undecodable requests', () => {
  it.each<[string, () => Uint8Array]>([
    ['a message cut in the middle of a string', () => wellFormed().subarray(0, 3)],
    ['a length prefix longer than the message', () => Uint8Array.from([0x0a, 0x7f, 0x61])],
    ['a wire type no field uses', () => Uint8Array.from([0x0f, 0x00])],
    ['a varint that never ends', () => Uint8Array.from([0x10, ...Array(11).fill(0xff)])],
  ])('%s is INVALID_ARGUMENT and reaches no handler', async (_case, bytes) => {
    const before = handled;
    const { error } = await unaryBytes(bytes());
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(/^the \/inference\.GRPCInferenceService\/ModelInfer request could not be decoded: /);
    expect(handled).toBe(before);
  });

  it('a dimension beyond 2^53 - 1 is INVALID_ARGUMENT naming the field and the range, one within it decodes exactly', async () => {
    const beyond = await unaryBytes(requestWithDim(2n ** 60n + 1n));
    expect(beyond.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(beyond.error?.details).toContain('inputs[0].shape[0] is 1152921504606846977, outside ±(2^53 - 1)');
    const negative = await unaryBytes(requestWithDim(-(2n ** 62n)));
    expect(negative.error?.details).toContain('inputs[0].shape[0] is -4611686018427387904');
    const within = await unaryBytes(requestWithDim(2n ** 53n - 1n));
    expect(within.error).toBeNull();
    expect(lastRequest?.inputs[0].shape).toEqual([2 ** 53 - 1]);
  });

  it('a parameter beyond 2^53 - 1 is INVALID_ARGUMENT naming the map, its key and the field', async () => {
    // parameters (field 4) is map<string, InferParameter>: an entry is { key = 1, value = 2 }; int64_param = 2, uint64_param = 5.
    const entry = (key: string, parameter: Uint8Array) => new BinaryWriter().uint32(10).string(key).uint32(18).bytes(parameter).finish();
    const top = new BinaryWriter().uint32(10).string('iris').uint32(34).bytes(entry('timeout', new BinaryWriter().uint32(16).int64(2n ** 62n).finish())).finish();
    expect((await unaryBytes(top)).error?.details).toContain('parameters["timeout"].int64_param is 4611686018427387904');
    const tensor = new BinaryWriter().uint32(10).string('x').uint32(34).bytes(entry('p', new BinaryWriter().uint32(40).uint64(2n ** 64n - 1n).finish())).finish();
    const onInput = new BinaryWriter().uint32(10).string('iris').uint32(42).bytes(tensor).finish();
    const answer = await unaryBytes(onInput);
    expect(answer.error?.code).toBe(status.INVALID_ARGUMENT);
    expect(answer.error?.details).toContain('inputs[0].parameters["p"].uint64_param is 18446744073709551615');
  });

  it('INT64 and UINT64 contents beyond 2^53 reach the handler exactly, unary and streamed', async () => {
    const int64s = [2n ** 62n + 1n, -(2n ** 63n), 2n ** 63n - 1n, -1n];
    const uint64s = [2n ** 64n - 1n, 2n ** 53n + 1n, 0n];
    // contents (field 5 of an input): int64_contents = 3 and uint64_contents = 5, packed.
    const contents = new BinaryWriter().uint32(26).fork();
    for (const value of int64s) contents.int64(value);
    contents.join().uint32(42).fork();
    for (const value of uint64s) contents.uint64(value);
    contents.join();
    const tensor = new BinaryWriter().uint32(10).string('x').uint32(18).string('INT64').uint32(42).bytes(contents.finish()).finish();
    const bytes = new BinaryWriter().uint32(10).string('iris').uint32(26).string('exact').uint32(42).bytes(tensor).finish();
    const { error, response } = await unaryBytes(bytes);
    expect(error).toBeNull();
    expect(response?.id).toBe('exact');
    expect(lastRequest?.inputs[0].contents?.int64Contents).toEqual(BigInt64Array.from(int64s));
    expect(lastRequest?.inputs[0].contents?.uint64Contents).toEqual(BigUint64Array.from(uint64s));

    const before = handled;
    const stream = client.makeBidiStreamRequest(STREAM, identity, (reply: Buffer) => ModelStreamInferResponse.decode(reply));
    const answered = new Promise<ModelStreamInferResponse>((resolve) => stream.on('data', resolve));
    stream.write(Buffer.from(bytes));
    expect((await answered).inferResponse?.id).toBe('exact');
    stream.end();
    expect(handled).toBe(before + 1);
    expect(lastRequest?.inputs[0].contents?.int64Contents).toEqual(BigInt64Array.from(int64s));
  });

  it('an undecodable message on a stream ends it INVALID_ARGUMENT after the good ones are answered', async () => {
    const stream = client.makeBidiStreamRequest(STREAM, identity, (reply: Buffer) => ModelStreamInferResponse.decode(reply));
    const answers: string[] = [];
    const ended = new Promise<ServiceError>((resolve) => stream.on('error', resolve));
    stream.on('data', (response: ModelStreamInferResponse) => answers.push(response.inferResponse?.id ?? ''));
    stream.write(Buffer.from(wellFormed()));
    await new Promise((wake) => setTimeout(wake, 100));
    stream.write(Buffer.from([0x0a, 0x7f]));
    const error = await ended;
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toContain('ModelStreamInfer request could not be decoded');
    expect(answers).toEqual(['ok']);
  });

  it("a '__proto__' parameter key is INVALID_ARGUMENT, where decoding would have replaced the map's prototype", async () => {
    // parameters (field 4) is map<string, InferParameter>: an entry is { key = 1, value = 2 }.
    const parameter = new BinaryWriter().uint32(8).bool(true).finish();
    const entry = new BinaryWriter().uint32(10).string('__proto__').uint32(18).bytes(parameter).finish();
    const bytes = new BinaryWriter().uint32(10).string('iris').uint32(34).bytes(entry).finish();
    const before = handled;
    const { error } = await unaryBytes(bytes);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toContain("'__proto__' is not accepted as a map key");
    expect(handled).toBe(before);
    // The same text as an ordinary string value decodes as usual, beside large tensor contents.
    const large = ModelInferRequest.encode(ModelInferRequest.fromPartial({
      modelName: 'iris', id: '__proto__',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [200_000], contents: { fp32Contents: new Array(200_000).fill(1) } }],
    })).finish();
    const largeAnswer = await unaryBytes(large);
    expect(largeAnswer.error).toBeNull();
    const named = await unaryBytes(ModelInferRequest.encode(ModelInferRequest.fromPartial({ modelName: 'iris', id: '__proto__' })).finish());
    expect(named.error).toBeNull();
    expect(named.response?.id).toBe('__proto__');
  });

  it('keeps serving well-formed requests afterwards', async () => {
    const { error, response } = await unaryBytes(wellFormed());
    expect(error).toBeNull();
    expect(response?.id).toBe('ok');
  });
});
