/**
 * The CLI's side of the services' APIs: gRPC clients for the registry and the router, and moving
 * model artifacts to and from the registry, verified by sha256 and resumable.
 */
export { inferenceClient, registryClient, unaryCall } from './clients.ts';
export {
  downloadBlob, listModelFiles, sha256OfFile, uploadModelDirectory, uploadModelFile, type VersionHeader,
} from './upload.ts';
