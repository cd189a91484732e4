/**
 * The registry without a transport: ModelRegistry over one ObjectStore, and the parts it keeps
 * private (content-addressed blobs, version and alias records, the event log, garbage
 * collection, the streaming ONNX signature reader); beside it, in the same store, the API keys
 * (KeyStore, and StoreKeyVerifier which authenticates from it) and the audit log.
 */
export { ModelRegistry } from './model-registry.ts';
export type { RegistryEvent, WatchItem } from './event-log.ts';
export { AuditLog } from './audit-log.ts';
export { KeyStore } from './key-store.ts';
export { StoreKeyVerifier } from './store-key-verifier.ts';
