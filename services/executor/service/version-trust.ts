/**
 * The executor believes nothing a router says about a version: the record it loads from is the
 * registry's own (GetVersion), and a LoadModel whose claims disagree with it is refused. Only
 * the model name and version number of a LoadModel are used to look the record up.
 */
import { Metadata } from '@grpc/grpc-js';
import { GetVersionRequest, type ModelVersion, type RegistryClient } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, failedPrecondition, invalidArgument, modelKeyOf, NexusError } from '../../domain/index.ts';
import { injectIntoMetadata } from '../../telemetry/tracing.ts';
import { checkSha256 } from './digest.ts';

/** How long one GetVersion to the registry may take, in milliseconds. */
const REGISTRY_DEADLINE_MS = 10_000;

/** The registry's record of one version (version >= 1); NOT_FOUND when it has none. */
export type VersionSource = (modelName: string, version: number) => Promise<ModelVersion>;

/** GetVersion on `client`, carrying the caller's trace. Failures other than NOT_FOUND / INVALID_ARGUMENT become UNAVAILABLE. */
export function registryVersionSource(client: RegistryClient): VersionSource {
  return (modelName, version) => new Promise((resolve, reject) => {
    client.getVersion(GetVersionRequest.fromPartial({ modelName, version }), injectIntoMetadata(new Metadata()),
      { deadline: Date.now() + REGISTRY_DEADLINE_MS }, (error, response) => {
        if (error) {
          const coded = NexusError.from(error);
          const meant = coded.code === ErrorCode.NOT_FOUND || coded.code === ErrorCode.INVALID_ARGUMENT;
          reject(meant ? coded : new NexusError(ErrorCode.UNAVAILABLE, `the registry could not be reached: ${coded.message}`));
        } else if (!response?.version) {
          reject(new NexusError(ErrorCode.UNAVAILABLE, `the registry returned no record for ${modelName}:${version}`));
        } else {
          resolve(response.version);
        }
      });
  });
}

/** JSON with object keys sorted, so two records compare by value. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => (inner && typeof inner === 'object' && !Array.isArray(inner)
    ? Object.fromEntries(Object.entries(inner).sort(([left], [right]) => (left < right ? -1 : left > right ? 1 : 0)))
    : inner));
}

/** The fields of a version record whose claims the executor checks, with how each is shown. */
const CHECKED_FIELDS = ['sha256', 'format', 'sizeBytes', 'tags', 'signature', 'batching'] as const;
const WIRE_NAMES: Record<(typeof CHECKED_FIELDS)[number], string> = {
  sha256: 'sha256', format: 'format', sizeBytes: 'size_bytes', tags: 'tags', signature: 'signature', batching: 'batching',
};

/**
 * Checks a LoadModel's claimed record against the registry's. Throws INVALID_ARGUMENT for a
 * malformed claim (no name, version 0, a digest that is not lower-case hex) and
 * FAILED_PRECONDITION naming the first field that disagrees. Returns the registry's record,
 * the only one the executor loads from.
 */
export function checkClaims(claimed: ModelVersion, record: ModelVersion): ModelVersion {
  const key = modelKeyOf(claimed);
  checkSha256('load_model.version.sha256', claimed.sha256);
  checkSha256(`the registry's sha256 of ${key}`, record.sha256);
  if (record.modelName !== claimed.modelName || record.version !== claimed.version) {
    throw failedPrecondition(`load_model.version names ${key}, the registry answered ${modelKeyOf(record)}`);
  }
  for (const field of CHECKED_FIELDS) {
    const mine = canonical(claimed[field] ?? null);
    const theirs = canonical(record[field] ?? null);
    if (mine !== theirs) {
      throw failedPrecondition(
        `load_model.version.${WIRE_NAMES[field]} of ${key} is ${mine.slice(0, 200)}, the registry has ${theirs.slice(0, 200)}; refusing to load it`,
      );
    }
  }
  return record;
}

/** Validates what a LoadModel names before the registry is asked; throws INVALID_ARGUMENT. */
export function checkLoadTarget(claimed: ModelVersion | undefined): ModelVersion {
  if (!claimed) throw invalidArgument('load_model.version is required');
  if (claimed.modelName === '') throw invalidArgument('load_model.version.model_name is empty; name the model to load');
  if (!Number.isInteger(claimed.version) || claimed.version < 1) {
    throw invalidArgument(`load_model.version.version is ${claimed.version}; a load names one stored version (>= 1)`);
  }
  checkSha256('load_model.version.sha256', claimed.sha256);
  return claimed;
}
