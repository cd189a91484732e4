/**
 * Immutable version records: `models/<name>/versions/000001.json`, created with a create-only
 * write and never rewritten. The next number is the newest listed plus one; when another writer
 * (in this process or another) took it first, the write fails and the one after is tried. So
 * numbers are handed out once each and without gaps: N+1 is only tried once N is known to exist,
 * and versions are never deleted.
 *
 * `index/models/<name>` marks that a model exists (written before its first version), so listing
 * models never has to walk every record.
 */
import { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import { PreconditionFailedError, type ObjectStore } from '../store/index.ts';
import { budgetExceeded } from '../validation/index.ts';

const versionsPrefix = (modelName: string) => `models/${modelName}/versions/`;
const versionKey = (modelName: string, version: number) => `${versionsPrefix(modelName)}${String(version).padStart(6, '0')}.json`;
const INDEX_PREFIX = 'index/models/';

export class VersionRecords {
  private readonly store: ObjectStore;
  private readonly maxVersions: number;

  /** `maxVersions`: most versions one model may have (RegistryLimits.maxVersionsPerModel). */
  constructor(store: ObjectStore, maxVersions: number) {
    this.store = store;
    this.maxVersions = maxVersions;
  }

  private quotaExceeded(modelName: string, version: number) {
    return budgetExceeded(`max_versions_per_model (model '${modelName}')`, version, this.maxVersions, 'versions');
  }

  /** Throws RESOURCE_EXHAUSTED when the model has its most versions already (checked again by create). */
  async checkQuota(modelName: string): Promise<void> {
    const latest = await this.latestNumber(modelName);
    if (latest >= this.maxVersions) throw this.quotaExceeded(modelName, latest + 1);
  }

  /**
   * Builds the model index when the store predates it (records written by an older registry):
   * one walk over `models/`, only when the index is empty.
   */
  async ensureIndex(): Promise<void> {
    for await (const entry of this.store.list(INDEX_PREFIX)) {
      void entry;
      return;
    }
    const names = new Set<string>();
    for await (const info of this.store.list('models/')) {
      const match = /^models\/([^/]+)\/versions\//.exec(info.key);
      if (match) names.add(match[1]);
    }
    for (const name of names) await this.markModel(name);
  }

  private async markModel(modelName: string): Promise<void> {
    try {
      await this.store.put(`${INDEX_PREFIX}${modelName}`, Buffer.from('{}'), { ifNoneMatch: true });
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
    }
  }

  /** The version numbers of a model, ascending. */
  async numbers(modelName: string): Promise<number[]> {
    const numbers: number[] = [];
    for await (const info of this.store.list(versionsPrefix(modelName))) {
      const match = /\/(\d+)\.json$/.exec(info.key);
      if (match) numbers.push(Number(match[1]));
    }
    return numbers.sort((a, b) => a - b);
  }

  /** The newest version number; 0 when the model has none. */
  async latestNumber(modelName: string): Promise<number> {
    return (await this.numbers(modelName)).at(-1) ?? 0;
  }

  /**
   * Records the next version of a model. `build` receives the number this attempt claims and
   * returns the record to write (it may be called again with a higher number after a race).
   */
  async create(modelName: string, build: (version: number) => ModelVersion): Promise<ModelVersion> {
    await this.markModel(modelName);
    let version = (await this.latestNumber(modelName)) + 1;
    for (;;) {
      // Numbers are gap-free, so claiming one past the quota means the quota is used up.
      if (version > this.maxVersions) throw this.quotaExceeded(modelName, version);
      const record = build(version);
      try {
        await this.store.put(versionKey(modelName, version), Buffer.from(JSON.stringify(ModelVersion.toJSON(record), null, 2)), { ifNoneMatch: true });
        return record;
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
        version += 1;
      }
    }
  }

  /** One version; 0 means the newest. Undefined when absent. */
  async read(modelName: string, version: number): Promise<ModelVersion | undefined> {
    const number = version === 0 ? await this.latestNumber(modelName) : version;
    if (number === 0) return undefined;
    const stored = await this.store.get(versionKey(modelName, number));
    if (!stored) return undefined;
    try {
      return parseVersionRecord(Buffer.from(stored.body).toString('utf8'));
    } catch (error) {
      throw new NexusError(ErrorCode.DATA_LOSS, `version record ${modelName}:${number} is unreadable`, { cause: error });
    }
  }

  /** Every version of a model, oldest first. */
  async list(modelName: string): Promise<ModelVersion[]> {
    const records: ModelVersion[] = [];
    for (const number of await this.numbers(modelName)) {
      const record = await this.read(modelName, number);
      if (record) records.push(record);
    }
    return records;
  }

  /** Every model name that has (or is getting) a version, sorted. */
  async modelNames(): Promise<string[]> {
    const names: string[] = [];
    for await (const info of this.store.list(INDEX_PREFIX)) names.push(info.key.slice(INDEX_PREFIX.length));
    return names.sort();
  }
}

/**
 * Reads a stored record: proto3 JSON as ModelVersion.toJSON writes it (older local stores hold
 * the plain object, which reads the same). Fields added since a record was written get their
 * defaults, so old records stay readable.
 */
export function parseVersionRecord(text: string): ModelVersion {
  return ModelVersion.fromJSON(JSON.parse(text));
}
