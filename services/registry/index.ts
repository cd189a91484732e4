/**
 * The model registry: versions of models, each tied to the commit that made it, kept in one
 * object store (store/) with no other database. The registry itself is core/, its gRPC layer
 * grpc/, its input rules validation/. What is public:
 *   - startRegistry: the gRPC server (grpc/) over a ModelRegistry, as the tests start it in-process;
 *   - ModelRegistry: uploads verified before they become versions, verified downloads, aliases
 *     moved by compare-and-swap, the Watch stream's cursor rules, garbage collection.
 * The input rules are validation/index.ts, which clients that check names and paths themselves
 * import alone (without the server). The process entry point is main.ts.
 */
export { startRegistry, type RunningRegistry } from './server.ts';
export { ModelRegistry, type RegistryEvent, type WatchItem } from './core/index.ts';
