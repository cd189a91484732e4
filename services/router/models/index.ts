/**
 * Models: which versions the router serves and where requests go. The catalog is the facade;
 * behind it the route table (pure decisions), the routes that follow the registry, the resolver,
 * and one ServedVersion per version with its lifecycle state. The registry and the executors are
 * reached through two small interfaces (RegistryView, VersionHost).
 */
export { ModelCatalog, type Routed } from './model-catalog.ts';
export { grpcRegistryView } from './grpc-registry-view.ts';
export { RegistryWatcher } from './registry-watch.ts';
export type { RegistryView, VersionHost } from './registry-view.ts';
export { ServedVersion, VersionState } from './served-version.ts';
export { KeyFollower } from './key-follower.ts';
