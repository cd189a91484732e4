/** Where the CLI and local services find each other and keep their data; flags override all. */
export { defaultDataDir } from '../domain/index.ts';

/** NEXUS_REGISTRY, or the registry `nexus up` starts: 127.0.0.1:8011. */
export function defaultRegistryAddress(): string {
  return process.env.NEXUS_REGISTRY ?? '127.0.0.1:8011';
}

/** NEXUS_ROUTER, or the router `nexus up` starts: 127.0.0.1:8001 (Triton's gRPC port). */
export function defaultRouterAddress(): string {
  return process.env.NEXUS_ROUTER ?? '127.0.0.1:8001';
}
