/**
 * Streams a model file to the registry: its digest is computed first so the registry can verify
 * the bytes it receives, then it goes up in chunks, never whole in memory.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { RegistryClient, UploadHeader, UploadVersionResponse } from '../protocol/generated/nexus/registry/v1/registry.ts';

/** Bytes per upload message. */
export const UPLOAD_CHUNK_BYTES = 1024 * 1024;

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: UPLOAD_CHUNK_BYTES })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Uploads `path` with `header` (its size and digest are filled in). `onProgress` gets the bytes
 * sent so far and the total.
 */
export async function uploadModelFile(
  client: RegistryClient,
  path: string,
  header: Omit<UploadHeader, 'sizeBytes' | 'sha256'>,
  onProgress: (sent: number, total: number) => void = () => {},
): Promise<UploadVersionResponse> {
  const { size } = await stat(path);
  const sha256 = await sha256OfFile(path);
  return new Promise<UploadVersionResponse>((resolve, reject) => {
    const stream = client.uploadVersion((error, response) => (error ? reject(error) : resolve(response)));
    stream.write({ header: { ...header, sizeBytes: size, sha256 } });
    (async () => {
      let sent = 0;
      for await (const chunk of createReadStream(path, { highWaterMark: UPLOAD_CHUNK_BYTES })) {
        const bytes = chunk as Buffer;
        if (!stream.write({ chunk: bytes })) await new Promise((resume) => stream.once('drain', resume));
        sent += bytes.byteLength;
        onProgress(sent, size);
      }
      stream.end();
    })().catch((error: unknown) => {
      stream.cancel();
      reject(error);
    });
  });
}
