/**
 * Hostile requests through a real gRPC client against a registry served on port 0: path tricks
 * and unicode in names, prototype keys in tags, sizes over the caps and beyond 2^53, offsets of
 * 2^63, lying headers, broken upload framing, hostile manifests, GC ages, reserved aliases and
 * bad split weights. Each is refused with its exact status code, the registry stays up, and a
 * correct upload and read still work afterwards.
 */
import { Client, credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  DownloadArtifactRequest, GarbageCollectRequest, GarbageCollectResponse, GetVersionRequest, GetVersionResponse, SetAliasRequest,
  StatBlobsRequest, UploadBlobRequest, UploadVersionRequest,
} from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { tinyModel } from './fixtures.ts';

const CAP = 4096;
let root: string;
let running: RunningRegistry;
let client: Client;
let healthySeed = 1000;

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const SERVICE = '/nexus.registry.v1.Registry';
const raw = (bytes: Uint8Array) => Buffer.from(bytes);

/** The status a unary call ends with (0 for OK), from bytes encoded by hand. */
function unary(method: string, request: Uint8Array): Promise<{ code: number; details: string; response?: Buffer }> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(`${SERVICE}/${method}`, (bytes: Buffer) => bytes, (bytes: Buffer) => bytes, raw(request), new Metadata(), {},
      (error: ServiceError | null, response?: Buffer) => resolve(error ? { code: error.code, details: error.details } : { code: status.OK, details: '', response }));
  });
}

/** The status a client stream ends with, sending these hand-encoded messages in order. */
function clientStream(method: string, messages: Uint8Array[]): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    const call = client.makeClientStreamRequest(`${SERVICE}/${method}`, (bytes: Buffer) => bytes, (bytes: Buffer) => bytes, new Metadata(), {},
      (error: ServiceError | null) => resolve(error ? { code: error.code, details: error.details } : { code: status.OK, details: '' }));
    for (const message of messages) call.write(raw(message));
    call.end();
  });
}

/** The status a server stream ends with. */
function serverStream(method: string, request: Uint8Array): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    const call = client.makeServerStreamRequest(`${SERVICE}/${method}`, (bytes: Buffer) => bytes, (bytes: Buffer) => bytes, raw(request), new Metadata(), {});
    call.on('data', () => undefined);
    call.on('error', (error: ServiceError) => resolve({ code: error.code, details: error.details }));
    call.on('end', () => resolve({ code: status.OK, details: '' }));
  });
}

const header = (fields: Partial<UploadVersionRequest['header']> & { modelName: string }) =>
  UploadVersionRequest.encode(UploadVersionRequest.fromPartial({ header: { format: 'onnx', ...fields } })).finish();
const chunk = (bytes: Uint8Array) => UploadVersionRequest.encode({ chunk: bytes, header: undefined, trailer: undefined }).finish();
const trailer = (digest: string) => UploadVersionRequest.encode({ trailer: { sha256: digest }, header: undefined, chunk: undefined }).finish();

/** An UploadVersionRequest whose header carries size_bytes as an arbitrary 64-bit value. */
function headerWithSize(modelName: string, sizeBytes: bigint): Uint8Array {
  const writer = new BinaryWriter();
  writer.uint32(10).fork().uint32(10).string(modelName).uint32(18).string('onnx').uint32(24).uint64(sizeBytes).join();
  return writer.finish();
}

/** An UploadVersionRequest whose header has one tag, encoded by hand (a client's own encoder drops a '__proto__' key). */
function headerWithTag(modelName: string, key: string, value: string): Uint8Array {
  const writer = new BinaryWriter();
  writer.uint32(10).fork().uint32(10).string(modelName).uint32(18).string('onnx')
    .uint32(50).fork().uint32(10).string(key).uint32(18).string(value).join().join();
  return writer.finish();
}

/** An upload of `bytes` as model `name`, with the header, chunks and trailer given. */
const upload = (messages: Uint8Array[]) => clientStream('UploadVersion', messages);

const manifest = (files: Array<{ path: string; sha256?: string; sizeBytes?: number }>) =>
  header({ modelName: 'hostile-dir', format: 'directory', files: files.map((file) => ({ sha256: 'b'.repeat(64), sizeBytes: 3, ...file })) });

let stored: { sha256: string; sizeBytes: number };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'nexus-hostile-'));
  running = await startRegistry({ dataDir: root, limits: { maxArtifactBytes: CAP, maxModelBytes: 2 * CAP } });
  client = new Client(running.address, credentials.createInsecure());
  const bytes = tinyModel(1);
  expect((await upload([header({ modelName: 'target' }), chunk(bytes)])).code).toBe(status.OK);
  stored = { sha256: sha256(bytes), sizeBytes: bytes.byteLength };
});

afterAll(async () => {
  client?.close();
  await running?.shutdown(0);
  await rm(root, { recursive: true, force: true });
});

const hugeName = 'a'.repeat(10 * 1024);
const model = tinyModel(2);

/** [what, the call, the status it must end with]. */
const CASES: Array<[string, () => Promise<{ code: number; details: string }>, number]> = [
  ['a model name with ../', () => upload([header({ modelName: '../../etc' }), chunk(model)]), status.INVALID_ARGUMENT],
  ['a model name with a NUL byte', () => upload([header({ modelName: 'ok\0evil' }), chunk(model)]), status.INVALID_ARGUMENT],
  ['a 10 KB model name', () => upload([header({ modelName: hugeName }), chunk(model)]), status.INVALID_ARGUMENT],
  ['a model name with a Cyrillic look-alike letter', () => upload([header({ modelName: 'iris\u0430' }), chunk(model)]), status.INVALID_ARGUMENT],
  ['a model name with a right-to-left override', () => upload([header({ modelName: 'x\u202Eexe.onnx' }), chunk(model)]), status.INVALID_ARGUMENT],
  ['a GetVersion of model __proto__', () => unary('GetVersion', GetVersionRequest.encode({ modelName: '__proto__', version: 0, alias: '' }).finish()), status.INVALID_ARGUMENT],
  ['a tag key __proto__', () => upload([headerWithTag('tags', '__proto__', 'polluted'), chunk(model)]), status.INVALID_ARGUMENT],
  ['a tag key constructor', () => upload([header({ modelName: 'tags', tags: { constructor: 'x' } }), chunk(model)]), status.INVALID_ARGUMENT],
  ['a file name with a directory', () => upload([header({ modelName: 'fname', fileName: '../model.onnx' }), chunk(model)]), status.INVALID_ARGUMENT],
  ['a declared size over the cap', () => upload([header({ modelName: 'big', sizeBytes: CAP + 1 }), chunk(model)]), status.RESOURCE_EXHAUSTED],
  ['a declared size of 2^63', () => upload([headerWithSize('big', 2n ** 63n), chunk(model)]), status.INVALID_ARGUMENT],
  ['a declared size of 2^64 - 1 (-1 as int64)', () => upload([headerWithSize('big', 2n ** 64n - 1n), chunk(model)]), status.INVALID_ARGUMENT],
  ['bytes over the cap with no declared size', () => upload([header({ modelName: 'sneaky' }), chunk(new Uint8Array(CAP + 1))]), status.RESOURCE_EXHAUSTED],
  ['a blob declared over the cap', () => clientStream('UploadBlob', [UploadBlobRequest.encode({ header: { sha256: 'c'.repeat(64), sizeBytes: CAP + 1 }, chunk: undefined }).finish()]), status.RESOURCE_EXHAUSTED],
  ['a header size that lies', () => upload([header({ modelName: 'liar', sizeBytes: model.byteLength + 1 }), chunk(model)]), status.INVALID_ARGUMENT],
  ['a header digest that lies', () => upload([header({ modelName: 'liar', sha256: 'd'.repeat(64) }), chunk(model)]), status.INVALID_ARGUMENT],
  ['a trailer digest that lies', () => upload([header({ modelName: 'liar' }), chunk(model), trailer('e'.repeat(64))]), status.INVALID_ARGUMENT],
  ['an upload with no header', () => upload([chunk(model)]), status.INVALID_ARGUMENT],
  ['an upload with no messages at all', () => upload([]), status.INVALID_ARGUMENT],
  ['an upload with two headers', () => upload([header({ modelName: 'twice' }), header({ modelName: 'twice' }), chunk(model)]), status.INVALID_ARGUMENT],
  ['chunks after the trailer', () => upload([header({ modelName: 'late' }), chunk(model), trailer(sha256(model)), chunk(model)]), status.INVALID_ARGUMENT],
  ['a manifest path with ..', () => upload([manifest([{ path: 'a/../../b' }])]), status.INVALID_ARGUMENT],
  ['a manifest with an absolute path', () => upload([manifest([{ path: '/etc/passwd' }])]), status.INVALID_ARGUMENT],
  ['a manifest listing a path twice', () => upload([manifest([{ path: 'w.bin' }, { path: 'W.bin' }])]), status.INVALID_ARGUMENT],
  ['a manifest over the model cap', () => upload([manifest([{ path: 'a.bin', sizeBytes: CAP }, { path: 'b.bin', sizeBytes: CAP }, { path: 'c.bin', sizeBytes: 1 }])]), status.RESOURCE_EXHAUSTED],
  ['a download from offset 2^63', () => serverStream('DownloadArtifact', new BinaryWriter().uint32(10).string(stored.sha256).uint32(16).uint64(2n ** 63n).finish()), status.INVALID_ARGUMENT],
  ['a download from past the end', () => serverStream('DownloadArtifact', DownloadArtifactRequest.encode({ sha256: stored.sha256, offset: stored.sizeBytes + 1 }).finish()), status.INVALID_ARGUMENT],
  ['a download of a path instead of a digest', () => serverStream('DownloadArtifact', DownloadArtifactRequest.encode({ sha256: '../../etc/passwd', offset: 0 }).finish()), status.INVALID_ARGUMENT],
  ['a StatBlobs of 10 001 digests', () => unary('StatBlobs', StatBlobsRequest.encode({ sha256: Array.from({ length: 10_001 }, () => 'f'.repeat(64)) }).finish()), status.INVALID_ARGUMENT],
  ['a watch after cursor 2^63', () => serverStream('Watch', new BinaryWriter().uint32(8).uint64(2n ** 63n).finish()), status.INVALID_ARGUMENT],
  ['a GC with min_age_seconds 2^63', () => unary('GarbageCollect', new BinaryWriter().uint32(8).bool(true).uint32(16).uint64(2n ** 63n).finish()), status.INVALID_ARGUMENT],
  ['an alias named latest', () => unary('SetAlias', SetAliasRequest.encode(SetAliasRequest.fromPartial({ modelName: 'target', alias: 'latest', version: 1 })).finish()), status.INVALID_ARGUMENT],
  ['an alias named v3', () => unary('SetAlias', SetAliasRequest.encode(SetAliasRequest.fromPartial({ modelName: 'target', alias: 'v3', version: 1 })).finish()), status.INVALID_ARGUMENT],
  ['an alias with expected_revision 2^63', () => unary('SetAlias', new BinaryWriter().uint32(10).string('target').uint32(18).string('prod').uint32(24).uint32(1).uint32(72).uint64(2n ** 63n).finish()), status.INVALID_ARGUMENT],
  ['a split weight of 0', () => unary('SetAlias', SetAliasRequest.encode(SetAliasRequest.fromPartial({ modelName: 'target', alias: 'ab', split: [{ version: 1, weight: 0 }, { version: 1, weight: 1 }] })).finish()), status.INVALID_ARGUMENT],
  ['a split weight of 2^32 - 1', () => unary('SetAlias', SetAliasRequest.encode(SetAliasRequest.fromPartial({ modelName: 'target', alias: 'ab', split: [{ version: 1, weight: 2 ** 32 - 1 }, { version: 1, weight: 1 }] })).finish()), status.INVALID_ARGUMENT],
  // A weight sent as a double (wire type 1) is not a uint32: the decoder skips it, and a weight of 0 is refused.
  ['a non-integer split weight', () => unary('SetAlias', new BinaryWriter().uint32(10).string('target').uint32(18).string('ab')
    .uint32(58).fork().uint32(8).uint32(1).uint32(17).double(1.5).join()
    .uint32(58).fork().uint32(8).uint32(1).uint32(16).uint32(1).join().finish()), status.INVALID_ARGUMENT],
  ['bytes that are not protobuf', () => unary('GetVersion', Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])), status.INVALID_ARGUMENT],
];

it.each(CASES)('refuses %s with its exact code, and keeps serving', async (_, call, code) => {
  const outcome = await call();
  expect({ code: outcome.code, details: outcome.details }).toMatchObject({ code });
  // Still up: a correct upload and read work.
  const bytes = tinyModel(healthySeed++);
  expect(await upload([header({ modelName: 'healthy', sha256: sha256(bytes), sizeBytes: bytes.byteLength }), chunk(bytes)])).toEqual({ code: status.OK, details: '' });
  const read = await unary('GetVersion', GetVersionRequest.encode({ modelName: 'healthy', version: 0, alias: '' }).finish());
  expect(GetVersionResponse.decode(read.response!).version?.sha256).toBe(sha256(bytes));
});

it('answers a GC with a huge min_age (nothing is that old) and one below the server minimum, raised', async () => {
  const huge = await unary('GarbageCollect', GarbageCollectRequest.encode({ delete: true, minAgeSeconds: 10 ** 12 }).finish());
  expect(GarbageCollectResponse.decode(huge.response!)).toMatchObject({ deleted: true, garbage: [], minAgeSeconds: 10 ** 12, minAgeRaised: false });
  const zero = await unary('GarbageCollect', GarbageCollectRequest.encode({ delete: true, minAgeSeconds: 0 }).finish());
  expect(GarbageCollectResponse.decode(zero.response!)).toMatchObject({ deleted: true, minAgeSeconds: 3600, minAgeRaised: true });
});

it('names the field and both values when a header lies', async () => {
  expect((await upload([header({ modelName: 'liar', sizeBytes: model.byteLength + 5 }), chunk(model)])).details)
    .toBe(`header.size_bytes announced ${model.byteLength + 5} bytes, but the upload ended after ${model.byteLength}`);
  expect((await upload([header({ modelName: 'liar', sha256: 'd'.repeat(64) }), chunk(model)])).details)
    .toBe(`header.sha256 announced ${'d'.repeat(64)}, but the uploaded bytes hash to sha256 ${sha256(model)}`);
  expect((await upload([headerWithSize('big', 2n ** 63n), chunk(model)])).details).toMatch(/^header.size_bytes is 2\^53 - 1 or more/);
  expect((await serverStream('DownloadArtifact', new BinaryWriter().uint32(10).string(stored.sha256).uint32(16).uint64(2n ** 63n).finish())).details)
    .toMatch(/^offset is 2\^53 - 1 or more/);
});
