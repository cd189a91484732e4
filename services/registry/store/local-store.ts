/**
 * The embedded default store: one local directory holding both the artifacts and the records.
 *
 *   blobs/sha256/ab/cdef…            artifact bytes, named by their digest, written once
 *   uploads/<random>                 in-flight uploads, never visible as a blob until verified
 *   models/<name>/versions/000001.json  version records, created exclusively (O_EXCL), never rewritten
 *
 * Exclusive create makes version numbering safe across processes sharing the directory: two writers
 * racing for number N both try to create N's file, one wins, the other moves on to N+1.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { ErrorCode, NexusError, notFound } from '../../rpc/errors.ts';

export interface StoredBlob {
  sha256: string;
  sizeBytes: number;
  /** True when these bytes were already stored before this write. */
  existed: boolean;
}

export interface VersionRecordBase {
  modelName: string;
  version: number;
}

export class LocalStore {
  readonly root: string;

  constructor(root: string) {
    this.root = root;
  }

  async init(): Promise<this> {
    await mkdir(join(this.root, 'blobs/sha256'), { recursive: true });
    await mkdir(join(this.root, 'uploads'), { recursive: true });
    await mkdir(join(this.root, 'models'), { recursive: true });
    // Uploads left by a process that died mid-stream are garbage: nothing refers to them. Only
    // old ones go, since another registry process may share this directory and be mid-upload.
    const staleBefore = Date.now() - 24 * 3600_000;
    for (const leftover of await readdir(join(this.root, 'uploads'))) {
      const path = join(this.root, 'uploads', leftover);
      const info = await stat(path).catch(() => undefined);
      if (info && info.mtimeMs < staleBefore) await rm(path, { force: true });
    }
    return this;
  }

  blobPath(sha256: string): string {
    return join(this.root, 'blobs/sha256', sha256.slice(0, 2), sha256.slice(2));
  }

  /**
   * Streams `chunks` to a temporary file while hashing them, checks the expected size and digest,
   * and only then moves the file under its digest. A failed or aborted write leaves nothing visible.
   */
  async writeBlob(
    chunks: AsyncIterable<Uint8Array>,
    expected: { sha256?: string; sizeBytes?: number } = {},
  ): Promise<StoredBlob & { tempPath: string; commit(): Promise<void>; discard(): Promise<void> }> {
    const tempPath = join(this.root, 'uploads', randomUUID());
    const hash = createHash('sha256');
    let sizeBytes = 0;
    const output = createWriteStream(tempPath, { flags: 'wx' });
    try {
      await pipeline(async function* () {
        for await (const chunk of chunks) {
          hash.update(chunk);
          sizeBytes += chunk.byteLength;
          yield chunk;
        }
      }, output);
    } catch (error) {
      await rm(tempPath, { force: true });
      throw error;
    }
    const sha256 = hash.digest('hex');
    const fail = async (message: string) => {
      await rm(tempPath, { force: true });
      return new NexusError(ErrorCode.DATA_LOSS, message);
    };
    if (expected.sizeBytes && expected.sizeBytes !== sizeBytes) {
      throw await fail(`upload ended after ${sizeBytes} bytes, but the header announced ${expected.sizeBytes}`);
    }
    if (expected.sha256 && expected.sha256 !== sha256) {
      throw await fail(`uploaded bytes hash to sha256 ${sha256}, but the header announced ${expected.sha256}`);
    }
    const finalPath = this.blobPath(sha256);
    const existed = await stat(finalPath).then(() => true, () => false);
    return {
      sha256, sizeBytes, existed, tempPath,
      commit: async () => {
        if (existed) return rm(tempPath, { force: true });
        await mkdir(join(finalPath, '..'), { recursive: true });
        await rename(tempPath, finalPath);
      },
      discard: () => rm(tempPath, { force: true }),
    };
  }

  /** Size of a stored blob; NOT_FOUND when absent. */
  async blobSize(sha256: string): Promise<number> {
    try {
      return (await stat(this.blobPath(sha256))).size;
    } catch {
      throw notFound(`no artifact with sha256 ${sha256}`);
    }
  }

  /** Reads a blob from `offset` in chunks of `chunkBytes`. */
  readBlob(sha256: string, offset: number, chunkBytes: number): AsyncIterable<Uint8Array> {
    return createReadStream(this.blobPath(sha256), { start: offset, highWaterMark: chunkBytes });
  }

  private versionsDir(modelName: string): string {
    return join(this.root, 'models', modelName, 'versions');
  }

  private versionPath(modelName: string, version: number): string {
    return join(this.versionsDir(modelName), `${String(version).padStart(6, '0')}.json`);
  }

  /**
   * Records the next version of a model. `build` receives the number this attempt claims and
   * returns the record to write. The record is written to a temporary file and hard-linked into
   * place: link() fails if the name exists, so concurrent writers never share a number, and a
   * reader never sees a half-written record.
   */
  async createVersion<T extends VersionRecordBase>(modelName: string, build: (version: number) => T): Promise<T> {
    await mkdir(this.versionsDir(modelName), { recursive: true });
    const tempPath = join(this.root, 'uploads', `record-${randomUUID()}`);
    try {
      let version = (await this.latestVersionNumber(modelName)) + 1;
      for (;;) {
        const record = build(version);
        await writeFile(tempPath, JSON.stringify(record, null, 2), { flush: true });
        try {
          await link(tempPath, this.versionPath(modelName, version));
          return record;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
          version += 1;
        }
      }
    } finally {
      await rm(tempPath, { force: true });
    }
  }

  private async versionNumbers(modelName: string): Promise<number[]> {
    const files = await readdir(this.versionsDir(modelName)).catch(() => [] as string[]);
    return files.filter((file) => /^\d{6,}\.json$/.test(file)).map((file) => Number(file.slice(0, -5))).sort((a, b) => a - b);
  }

  private async latestVersionNumber(modelName: string): Promise<number> {
    const numbers = await this.versionNumbers(modelName);
    return numbers.at(-1) ?? 0;
  }

  /** Reads one version record; 0 means the latest. */
  async readVersion<T>(modelName: string, version: number): Promise<T | undefined> {
    const number = version === 0 ? await this.latestVersionNumber(modelName) : version;
    if (number === 0) return undefined;
    const text = await readFile(this.versionPath(modelName, number), 'utf8').catch(() => undefined);
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new NexusError(ErrorCode.DATA_LOSS, `version record ${modelName}:${number} is unreadable`, { cause: error });
    }
  }

  async listVersions<T>(modelName: string): Promise<T[]> {
    const records: T[] = [];
    for (const number of await this.versionNumbers(modelName)) {
      const record = await this.readVersion<T>(modelName, number);
      if (record) records.push(record);
    }
    return records;
  }

  async listModelNames(): Promise<string[]> {
    const names = await readdir(join(this.root, 'models')).catch(() => [] as string[]);
    return names.sort();
  }
}
