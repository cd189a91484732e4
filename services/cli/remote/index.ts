/**
 * The CLI's side of the services' APIs: gRPC clients for the registry (and its Keys service) and
 * the router, carrying the CLI's credentials, and moving model artifacts to and from the
 * registry, verified by sha256 and resumable.
 */
export { inferenceClient, keysClient, registryClient, unaryCall } from './clients.ts';
export { adminKeyPath, bearerInterceptor, configureConnection, useLocalDeployment } from './credentials.ts';
export {
  downloadBlob, listModelFiles, sha256OfFile, uploadModelDirectory, uploadModelFile, type VersionHeader,
} from './upload.ts';
