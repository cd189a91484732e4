/**
 * Where the registry keeps its objects: one ObjectStore interface (create-only and
 * compare-and-swap writes, verified multi-part uploads, ranged reads) with local-directory, S3
 * and GCS backends, chosen by a StoreConfig from flags, NEXUS_STORE_* variables or a .nexusrc.
 * The S3 and GCS backends are not re-exported: openStore loads their SDKs only when configured.
 */
export {
  ObjectNotFoundError, PreconditionFailedError, type ObjectInfo, type ObjectStore,
} from './object-store.ts';
export { LocalObjectStore } from './local-store.ts';
export { openStore, resolveStoreConfig, STORE_PROVIDERS, type StoreConfig } from './store-config.ts';
