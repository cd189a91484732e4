/**
 * Garbage collection: blobs no version refers to, and uploads abandoned under `uploads/`. Versions
 * are never deleted, so a blob a version ever referred to is never garbage; what is left over
 * comes from uploads that failed or were abandoned before their version was recorded (a directory
 * model whose version never came, a model refused for its signature, a killed registry).
 *
 * Objects an upload under way holds (its staging key, its blob, until the version record is
 * written; see upload-leases.ts) are never touched. Only objects older than `minAgeMs` are
 * considered, since a young unreferenced blob may belong to an upload in another registry process
 * about to record its version; a request for less than the server's minimum age gets the
 * minimum. Deleting re-reads the references and re-checks each object just before removing it.
 */
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { sha256OfBlobKey } from './blob-store.ts';
import type { ObjectStore } from '../store/index.ts';
import type { UploadLeases } from './upload-leases.ts';
import type { VersionRecords } from './version-records.ts';

/** Least age of an object for collection when the request names none: one hour, in milliseconds. */
const DEFAULT_GC_MIN_AGE_MS = 3600_000;

export interface GarbageObject {
  key: string;
  /** Empty for an abandoned upload. */
  sha256: string;
  sizeBytes: number;
  modifiedAtUnixMs: number;
}

export interface GarbageReport {
  garbage: GarbageObject[];
  garbageBytes: number;
  referencedBlobs: number;
  deleted: boolean;
  /** The least age applied, in milliseconds. */
  minAgeMs: number;
  /** True when the request asked for a shorter least age and the server's minimum applied instead. */
  minAgeRaised: boolean;
}

/** Every digest a version refers to: its artifact (or manifest) and each of its files. */
export function referencedDigests(versions: Iterable<ModelVersion>): Set<string> {
  const digests = new Set<string>();
  for (const version of versions) {
    digests.add(version.sha256);
    for (const file of version.files) digests.add(file.sha256);
  }
  return digests;
}

export class GarbageCollector {
  private readonly store: ObjectStore;
  private readonly versions: VersionRecords;
  private readonly leases: UploadLeases;
  private readonly serverMinAgeMs: number;

  /** `serverMinAgeMs`: the least age any request gets (RegistryLimits.gcMinAgeMs). */
  constructor(store: ObjectStore, versions: VersionRecords, leases: UploadLeases, serverMinAgeMs: number) {
    this.store = store;
    this.versions = versions;
    this.leases = leases;
    this.serverMinAgeMs = serverMinAgeMs;
  }

  private async references(): Promise<Set<string>> {
    const all: ModelVersion[] = [];
    for (const name of await this.versions.modelNames()) all.push(...(await this.versions.list(name)));
    return referencedDigests(all);
  }

  /** Lists (and with `delete`, removes) the garbage. */
  async collect(options: { delete: boolean; minAgeMs?: number; nowMs?: number }): Promise<GarbageReport> {
    const asked = options.minAgeMs ?? DEFAULT_GC_MIN_AGE_MS;
    const minAgeMs = Math.max(asked, this.serverMinAgeMs);
    const oldEnough = (modifiedAtMs: number) => (options.nowMs ?? Date.now()) - modifiedAtMs >= minAgeMs;
    const endCollection = this.leases.beginCollection();
    try {
      return await this.collectAged(options.delete, oldEnough, { minAgeMs, minAgeRaised: minAgeMs > asked });
    } finally {
      endCollection();
    }
  }

  private async collectAged(
    remove: boolean, oldEnough: (modifiedAtMs: number) => boolean, applied: Pick<GarbageReport, 'minAgeMs' | 'minAgeRaised'>,
  ): Promise<GarbageReport> {
    let referenced = await this.references();
    const garbage: GarbageObject[] = [];
    let referencedBlobs = 0;
    for await (const info of this.store.list('blobs/sha256/')) {
      const sha256 = sha256OfBlobKey(info.key);
      if (!sha256) continue;
      if (referenced.has(sha256)) referencedBlobs += 1;
      else if (oldEnough(info.modifiedAtMs) && !this.leases.isHeld(info.key)) garbage.push({ key: info.key, sha256, sizeBytes: info.sizeBytes, modifiedAtUnixMs: Math.floor(info.modifiedAtMs) });
    }
    for await (const info of this.store.list('uploads/')) {
      if (oldEnough(info.modifiedAtMs) && !this.leases.isHeld(info.key)) garbage.push({ key: info.key, sha256: '', sizeBytes: info.sizeBytes, modifiedAtUnixMs: Math.floor(info.modifiedAtMs) });
    }

    const removed: GarbageObject[] = [];
    if (remove && garbage.length > 0) {
      referenced = await this.references();
      for (const object of garbage) {
        if (object.sha256 && referenced.has(object.sha256)) continue;
        const deleted = await this.leases.collect(object.key, async () => {
          const now = await this.store.head(object.key);
          if (!now || !oldEnough(now.modifiedAtMs)) return false;
          await this.store.delete(object.key);
          return true;
        });
        if (deleted) removed.push(object);
      }
    }
    const reported = (remove ? removed : garbage).sort((a, b) => a.key.localeCompare(b.key));
    return {
      garbage: reported,
      garbageBytes: reported.reduce((total, object) => total + object.sizeBytes, 0),
      referencedBlobs,
      deleted: remove,
      ...applied,
    };
  }
}
