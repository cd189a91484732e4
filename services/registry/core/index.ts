/**
 * The registry without a transport: ModelRegistry over one ObjectStore, and the parts it keeps
 * private (content-addressed blobs, version and alias records, the event log, garbage
 * collection, the streaming ONNX signature reader).
 */
export { ModelRegistry } from './model-registry.ts';
export type { RegistryEvent, WatchItem } from './event-log.ts';
