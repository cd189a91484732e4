/**
 * A 1 GiB ONNX model up and down through a registry running as its own process: the bytes are
 * generated as a stream (never held), the registry reads the signature past the 1 GiB of weights,
 * verifies the digest the client sent in its trailer, and serves the bytes back whole and from
 * an offset, all within 200 MB of resident memory (VmHWM of the registry process).
 */
import { credentials } from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  RegistryClient, UploadHeader, type DownloadArtifactResponse, type UploadVersionResponse,
} from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { hugeOnnxModel, startRegistryProcess, type RegistryProcess } from './fixtures.ts';

const GiB = 1024 ** 3;
const MEMORY_LIMIT_BYTES = 200 * 1000 * 1000;
const LARGE_MESSAGES = {
  'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024,
  // A receive window of 8 MiB instead of HTTP/2's 64 KiB, so the download is not paced by round trips.
  'grpc-node.flow_control_window': 8 * 1024 * 1024,
};

let dataDir: string;
let registry: RegistryProcess;
let client: RegistryClient;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'nexus-large-'));
  registry = await startRegistryProcess(['--data-dir', join(dataDir, 'store')], { NEXUS_LOG_LEVEL: 'warn' });
  client = new RegistryClient(registry.address, credentials.createInsecure(), LARGE_MESSAGES);
});

afterAll(async () => {
  client?.close();
  await registry?.stop();
  await rm(dataDir, { recursive: true, force: true });
});

/** Downloads from `offset`, hashing as it goes; returns the digest and the byte count. */
async function download(sha256: string, offset: number): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const message of client.downloadArtifact({ sha256, offset }) as AsyncIterable<DownloadArtifactResponse>) {
    expect(message.offset).toBe(offset + bytes);
    hash.update(message.chunk);
    bytes += message.chunk.byteLength;
  }
  return { sha256: hash.digest('hex'), bytes };
}

it('stores and serves a 1 GiB model in under 200 MB of registry memory', async () => {
  const model = hugeOnnxModel(GiB);
  const tailOffset = model.sizeBytes - 3 * 1024 * 1024;
  const whole = createHash('sha256');
  const tail = createHash('sha256');

  const uploadStarted = performance.now();
  const response = await new Promise<UploadVersionResponse>((resolve, reject) => {
    const stream = client.uploadVersion((error, reply) => (error ? reject(error) : resolve(reply)));
    (async () => {
      // One pass: no digest in the header, the client's digest follows the bytes as a trailer.
      stream.write({ header: UploadHeader.fromPartial({ modelName: 'huge', format: 'onnx', sizeBytes: model.sizeBytes, creator: 'test', fileName: 'huge.onnx' }) });
      let position = 0;
      for await (const chunk of model.chunks()) {
        whole.update(chunk);
        if (position + chunk.byteLength > tailOffset) tail.update(chunk.subarray(Math.max(0, tailOffset - position)));
        position += chunk.byteLength;
        if (!stream.write({ chunk })) await new Promise((resume) => stream.once('drain', resume));
      }
      stream.write({ trailer: { sha256: whole.copy().digest('hex') } });
      stream.end();
    })().catch(reject);
  });
  const uploadSeconds = (performance.now() - uploadStarted) / 1000;
  const sha256 = whole.digest('hex');
  expect(response.version).toMatchObject({ modelName: 'huge', version: 1, sha256, sizeBytes: model.sizeBytes, signature: model.signature });
  expect(response.version!.files).toEqual([{ path: 'huge.onnx', sha256, sizeBytes: model.sizeBytes }]);
  const peakAfterUpload = await registry.peakResidentBytes();

  const downloadStarted = performance.now();
  expect(await download(sha256, 0)).toEqual({ sha256, bytes: model.sizeBytes });
  const downloadSeconds = (performance.now() - downloadStarted) / 1000;
  // Resuming near the end returns exactly the rest.
  expect(await download(sha256, tailOffset)).toEqual({ sha256: tail.digest('hex'), bytes: model.sizeBytes - tailOffset });

  const peak = await registry.peakResidentBytes();
  console.log(`1 GiB model: upload ${uploadSeconds.toFixed(1)} s (${(model.sizeBytes / GiB / uploadSeconds).toFixed(2)} GiB/s), `
    + `download ${downloadSeconds.toFixed(1)} s (${(model.sizeBytes / GiB / downloadSeconds).toFixed(2)} GiB/s), `
    + `registry peak RSS ${(peakAfterUpload / 1e6).toFixed(0)} MB after upload, ${(peak / 1e6).toFixed(0)} MB after downloads`);
  expect(peak).toBeLessThan(MEMORY_LIMIT_BYTES);
  // Staged under uploads/ while its digest was unknown, then moved into place: nothing left behind.
  expect(await readdir(join(dataDir, 'store/uploads'))).toEqual([]);
}, 120_000);
