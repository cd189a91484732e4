/**
 * The embedded default store: one local directory. An object is a file named by its key.
 *
 * Create-only writes go to a temporary file that is then hard-linked into place: link() fails if
 * the name exists, so of two racing writers exactly one wins, even across processes, and nobody
 * sees a half-written file. Compare-and-swap uses the same primitive on generations: an object
 * rewritten by compare-and-swap keeps its first content at `key` and each later one at
 * `key#2`, `key#3`, … (never removed, so an alias keeps its whole past on disk as well). The
 * etag is the generation; replacing generation N means creating `key#N+1` exclusively, which
 * fails as soon as anybody else did it first. Large uploads are written to `uploads/`, synced,
 * and renamed into place only after `beforeCommit` accepts them.
 *
 * A temporary file this store is still writing belongs to no object yet: listings leave it out,
 * so garbage collection only ever finds the leftovers of a writer that died.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  checkKey, ObjectNotFoundError, PreconditionFailedError, type ObjectInfo, type ObjectStore, type StoredObject,
  type WriteCondition,
} from './object-store.ts';

/** Bytes per chunk when reading a file (a download's message size). */
const READ_CHUNK_BYTES = 256 * 1024;
const GENERATION = /^(.+)#(\d+)$/;

const isCode = (error: unknown, code: string) => (error as NodeJS.ErrnoException)?.code === code;

export class LocalObjectStore implements ObjectStore {
  readonly root: string;
  readonly description: string;
  /** Names under `uploads/` of the temporary files being written now. */
  private readonly writing = new Set<string>();

  constructor(root: string) {
    this.root = root;
    this.description = `file://${root}`;
  }

  /** Creates the directory (and its `uploads/`) when missing. */
  async init(): Promise<this> {
    await mkdir(join(this.root, 'uploads'), { recursive: true });
    return this;
  }

  /** A fresh temporary file's path under `uploads/`, left out of listings until `done`. */
  private temporary(kind: string): { path: string; done: () => void } {
    const name = `${kind}-${randomUUID()}`;
    this.writing.add(name);
    return { path: join(this.root, 'uploads', name), done: () => this.writing.delete(name) };
  }

  /** The file holding generation `generation` of `key` (1 is the plain name). */
  private pathOf(key: string, generation = 1): string {
    const path = join(this.root, checkKey(key));
    return generation === 1 ? path : `${path}#${generation}`;
  }

  private async exists(path: string): Promise<boolean> {
    return stat(path).then(() => true, (error: unknown) => {
      if (isCode(error, 'ENOENT') || isCode(error, 'ENOTDIR')) return false;
      throw error;
    });
  }

  /**
   * The newest generation of `key`, 0 when absent. Generations are contiguous (N+1 is only ever
   * created after N), so a doubling probe and a binary search find it in O(log N) stats.
   */
  private async latestGeneration(key: string): Promise<number> {
    if (!(await this.exists(this.pathOf(key)))) return 0;
    let low = 1;
    let high = 2;
    while (await this.exists(this.pathOf(key, high))) {
      low = high;
      high *= 2;
    }
    // Invariant: `low` exists, `high` does not.
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2);
      if (await this.exists(this.pathOf(key, middle))) low = middle;
      else high = middle;
    }
    return low;
  }

  async get(key: string): Promise<StoredObject | undefined> {
    // A reader racing a writer may find its generation gone only if the key was deleted; retry once.
    for (let attempt = 0; attempt < 2; attempt++) {
      const generation = await this.latestGeneration(key);
      if (generation === 0) return undefined;
      try {
        return { body: await readFile(this.pathOf(key, generation)), etag: `g${generation}` };
      } catch (error) {
        if (!isCode(error, 'ENOENT')) throw error;
      }
    }
    return undefined;
  }

  async put(key: string, body: Uint8Array, condition?: WriteCondition): Promise<string> {
    const target = this.pathOf(key);
    await mkdir(dirname(target), { recursive: true });
    const temporary = this.temporary('record');
    const tempPath = temporary.path;
    try {
      const handle = await open(tempPath, 'wx');
      try {
        await handle.writeFile(body);
        await handle.sync();
      } finally {
        await handle.close();
      }
      if (condition && 'ifNoneMatch' in condition) {
        await this.linkExclusive(tempPath, target, key);
        return 'g1';
      }
      if (condition && 'ifMatch' in condition) {
        const expected = /^g(\d+)$/.exec(condition.ifMatch);
        const generation = expected ? Number(expected[1]) : 0;
        if (generation < 1 || !(await this.exists(this.pathOf(key, generation)))) throw new PreconditionFailedError(key);
        await this.linkExclusive(tempPath, this.pathOf(key, generation + 1), key);
        return `g${generation + 1}`;
      }
      // Unconditional: take the next generation, whoever else is writing.
      for (;;) {
        const next = (await this.latestGeneration(key)) + 1;
        try {
          await this.linkExclusive(tempPath, this.pathOf(key, next), key);
          return `g${next}`;
        } catch (error) {
          if (!(error instanceof PreconditionFailedError)) throw error;
        }
      }
    } finally {
      await rm(tempPath, { force: true });
      temporary.done();
    }
  }

  private async linkExclusive(from: string, to: string, key: string): Promise<void> {
    try {
      await link(from, to);
    } catch (error) {
      if (isCode(error, 'EEXIST')) throw new PreconditionFailedError(key, { cause: error });
      throw error;
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const generation = await this.latestGeneration(key);
    if (generation === 0) return undefined;
    const info = await stat(this.pathOf(key, generation)).catch(() => undefined);
    return info && { key, sizeBytes: info.size, modifiedAtMs: info.mtimeMs };
  }

  async *list(prefix: string, options: { startAfter?: string } = {}): AsyncIterable<ObjectInfo> {
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash < 0 ? '' : prefix.slice(0, slash);
    const keys = new Set<string>();
    const walk = async (dirKey: string): Promise<void> => {
      const entries = await readdir(dirKey ? join(this.root, dirKey) : this.root, { withFileTypes: true }).catch((error: unknown) => {
        if (isCode(error, 'ENOENT') || isCode(error, 'ENOTDIR')) return [];
        throw error;
      });
      for (const entry of entries) {
        const key = dirKey ? `${dirKey}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(key);
        } else if (entry.isFile() && !entry.name.startsWith('.')) {
          // Later generations are the same object as the plain name.
          const base = GENERATION.exec(key)?.[1] ?? key;
          if (base.startsWith(prefix) && !(dirKey === 'uploads' && this.writing.has(entry.name))) keys.add(base);
        }
      }
    };
    await walk(baseKey);
    for (const key of [...keys].sort()) {
      if (options.startAfter !== undefined && key <= options.startAfter) continue;
      const info = await this.head(key);
      if (info) yield info;
    }
  }

  async delete(key: string): Promise<void> {
    const newest = await this.latestGeneration(key);
    for (let generation = newest; generation >= 1; generation--) {
      await unlink(this.pathOf(key, generation)).catch((error: unknown) => {
        if (!isCode(error, 'ENOENT')) throw error;
      });
    }
  }

  async *read(key: string, offset = 0): AsyncIterable<Uint8Array> {
    const generation = await this.latestGeneration(key);
    if (generation === 0) throw new ObjectNotFoundError(key);
    yield* createReadStream(this.pathOf(key, generation), { start: offset, highWaterMark: READ_CHUNK_BYTES }) as AsyncIterable<Buffer>;
  }

  async upload(key: string, chunks: AsyncIterable<Uint8Array>, beforeCommit: () => Promise<void>): Promise<void> {
    const target = this.pathOf(key);
    const temporary = this.temporary('part');
    const tempPath = temporary.path;
    let committed = false;
    try {
      const handle = await open(tempPath, 'wx');
      try {
        for await (const chunk of chunks) await handle.write(chunk);
        // On disk before it has a name: a crash never leaves a named blob with missing bytes.
        await handle.sync();
      } finally {
        await handle.close();
      }
      await beforeCommit();
      await mkdir(dirname(target), { recursive: true });
      await rename(tempPath, target);
      committed = true;
    } finally {
      if (!committed) await rm(tempPath, { force: true });
      temporary.done();
    }
  }

  async copy(fromKey: string, toKey: string): Promise<void> {
    const from = this.pathOf(fromKey);
    const target = this.pathOf(toKey);
    await mkdir(dirname(target), { recursive: true });
    // A hard link shares the bytes; the rename publishes it atomically under the new name.
    const temporary = this.temporary('copy');
    const tempPath = temporary.path;
    try {
      try {
        await link(from, tempPath);
      } catch (error) {
        if (isCode(error, 'ENOENT')) throw new ObjectNotFoundError(fromKey, { cause: error });
        throw error;
      }
      await rename(tempPath, target);
    } finally {
      await rm(tempPath, { force: true });
      temporary.done();
    }
  }

  async close(): Promise<void> {}
}
