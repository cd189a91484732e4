/**
 * What the model catalog reads from the registry, as a small interface: the catalog is tested
 * against a fake, and the gRPC client is adapted to it once (grpc-registry-view.ts).
 */
import type { Alias, ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import type { ModelKey } from '../../domain/index.ts';
import type { BatchResult, ExecuteBatch } from '../../protocol/generated/nexus/executor/v1/executor.ts';

export interface RegistryView {
  /**
   * One version's record; version 0 asks for the newest. Rejects NOT_FOUND or INVALID_ARGUMENT
   * as the registry answered, anything else as UNAVAILABLE.
   */
  getVersion(modelName: string, version: number): Promise<ModelVersion>;
  /** Every alias of a model, with its target and revision. */
  listAliases(modelName: string): Promise<Alias[]>;
  /** Every version number of a model. */
  listVersions(modelName: string): Promise<number[]>;
}

/** Where served versions are loaded and run: the executor pool, or a fake in tests. */
export interface VersionHost {
  /** Loads a version on the executors, warmed up to `maxBatchSize` (0: the record's); resolves once at least one has it. */
  ensureLoaded(version: ModelVersion, maxBatchSize?: number): Promise<void>;
  /** Stops serving a version everywhere. */
  unload(version: Pick<ModelVersion, 'modelName' | 'version'>): void;
  /** Some ready executor holds it. */
  isLoaded(key: ModelKey): boolean;
  /** Some executor holding it has a free slot. */
  hasCapacity(key: ModelKey): boolean;
  /** Runs a batch; UNAVAILABLE means it did not run. */
  execute(key: ModelKey, batch: Omit<ExecuteBatch, 'batchId'>): Promise<BatchResult>;
  /** Calls `listener` whenever a slot frees or an executor (re)connects. */
  onCapacity(listener: () => void): unknown;
}
