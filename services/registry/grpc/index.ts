/**
 * The registry's gRPC layer: the service handlers over a ModelRegistry and over its KeyStore,
 * who may call which method, the service definition with its lean download encoder, and the
 * framing of upload and download streams.
 */
export { KEYS_ACCESS, REGISTRY_ACCESS } from './access.ts';
export { createKeysService } from './keys-service.ts';
export { createRegistryService } from './registry-service.ts';
export { encodeDownloadResponse, REGISTRY_SERVICE_DEFINITION } from './codecs.ts';
export { downloadChunks, uploadBody, type UploadMessage } from './framing.ts';
