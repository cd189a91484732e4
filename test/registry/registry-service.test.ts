/** The registry over gRPC: verified uploads, one copy per digest, resumable downloads, numbering. */
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetVersionRequest, RegistryClient, UploadHeader, type UploadVersionResponse } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { GraphBuilder } from '../../services/onnx/index.ts';
import { startRegistry } from '../../services/registry/server.ts';
import type { RunningServer } from '../../services/rpc/server.ts';
import { uploadModelFile } from '../../services/cli/upload.ts';

let dataDir: string;
let registry: RunningServer;
let client: RegistryClient;

/** A small valid ONNX model; `seed` changes its weights and so its digest. */
function modelBytes(seed: number): Uint8Array {
  return new GraphBuilder('tiny')
    .input('x', 'FP32', [-1, 2])
    .initializer('w', 'FP32', [2, 2], new Float32Array([seed, 1, 2, 3]))
    .node('MatMul', ['x', 'w'], ['y'])
    .output('y', 'FP32', [-1, 2])
    .toBytes();
}

async function upload(name: string, bytes: Uint8Array): Promise<UploadVersionResponse> {
  const path = join(dataDir, `upload-${Math.random()}.onnx`);
  await writeFile(path, bytes);
  return uploadModelFile(client, path, { modelName: name, format: 'onnx', lineage: undefined, tags: {}, creator: 'test', batching: undefined });
}

function download(sha256: string, offset = 0): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    const stream = client.downloadArtifact({ sha256, offset });
    stream.on('data', (message: { chunk: Uint8Array }) => parts.push(Buffer.from(message.chunk)));
    stream.on('end', () => resolve(Buffer.concat(parts)));
    stream.on('error', reject);
  });
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'nexus-registry-'));
  registry = await startRegistry({ dataDir: join(dataDir, 'store') });
  client = new RegistryClient(registry.address, credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await registry?.shutdown(1000);
  await rm(dataDir, { recursive: true, force: true });
});

describe('registry', () => {
  it('stores a version with its digest and signature, and serves the same bytes back', async () => {
    const bytes = modelBytes(1);
    const { version, deduplicated } = await upload('tiny', bytes);
    expect(deduplicated).toBe(false);
    expect(version).toMatchObject({
      modelName: 'tiny', version: 1, format: 'onnx', sizeBytes: bytes.byteLength,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      signature: { inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 2] }], outputs: [{ name: 'y', datatype: 'FP32', shape: [-1, 2] }] },
    });
    expect(Buffer.from(await download(version!.sha256)).equals(Buffer.from(bytes))).toBe(true);
    // Resuming from an offset returns the rest.
    expect(Buffer.from(await download(version!.sha256, 10)).equals(Buffer.from(bytes.subarray(10)))).toBe(true);
  });

  it('keeps one copy of bytes stored under several versions', async () => {
    const bytes = modelBytes(2);
    const first = await upload('dedup', bytes);
    const second = await upload('dedup', bytes);
    expect(second.deduplicated).toBe(true);
    expect(second.version!.version).toBe(first.version!.version + 1);
    const blobDir = join(dataDir, 'store/blobs/sha256', first.version!.sha256.slice(0, 2));
    expect(await readdir(blobDir)).toEqual([first.version!.sha256.slice(2)]);
  });

  it('gives concurrent writers distinct, gap-free version numbers', async () => {
    const results = await Promise.all(Array.from({ length: 12 }, (_, index) => upload('busy', modelBytes(100 + index))));
    const numbers = results.map((result) => result.version!.version).sort((a, b) => a - b);
    expect(numbers).toEqual(Array.from({ length: 12 }, (_, index) => index + 1));
  });

  it('refuses an upload whose bytes do not match the announced digest, leaving nothing visible', async () => {
    const error = await new Promise<ServiceError>((resolve) => {
      const stream = client.uploadVersion((failure) => resolve(failure!));
      stream.write({ header: UploadHeader.fromPartial({ modelName: 'liar', format: 'onnx', sha256: 'a'.repeat(64) }) });
      stream.write({ chunk: modelBytes(3) });
      stream.end();
    });
    expect(error.code).toBe(status.DATA_LOSS);
    expect(error.details).toMatch(/hash to sha256 .* announced a{64}/);
    const missing = await new Promise<ServiceError>((resolve) =>
      client.getVersion(GetVersionRequest.fromPartial({ modelName: 'liar' }), (failure) => resolve(failure!)));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(await readdir(join(dataDir, 'store/uploads'))).toEqual([]);
  });

  it.each([
    ['a path-traversal name', '../etc', /model_name '..\/etc' is invalid/],
    ['an upper-case name', 'Iris', /is invalid/],
  ])('rejects %s with INVALID_ARGUMENT', async (_, name, message) => {
    const error = await upload(name, modelBytes(4)).then(() => undefined, (failure: ServiceError) => failure);
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toMatch(message);
  });

  it('answers NOT_FOUND for an unknown digest and INVALID_ARGUMENT for a malformed one', async () => {
    await expect(download('0'.repeat(64))).rejects.toMatchObject({ code: status.NOT_FOUND });
    await expect(download('../../etc/passwd')).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  });
});
