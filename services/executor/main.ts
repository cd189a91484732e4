#!/usr/bin/env node
/** An executor as a process: node services/executor/main.ts --registry 127.0.0.1:8011 */
import { Command } from 'commander';
import { join } from 'node:path';
import { defaultDataDir } from '../domain/data-dir.ts';
import { drainDelayMs, runServiceProcess } from '../rpc/service-process.ts';
import { enforceBindPolicy, loadServiceTls, tlsDirFrom } from '../tls/index.ts';
import { startExecutor } from './service/index.ts';

const options = new Command('nexus-executor')
  .option('--metrics-address <host:port>', 'where /metrics is served for Prometheus', '127.0.0.1:8022')
  .option('--address <host:port>', 'address to listen on', '127.0.0.1:8021')
  .option('--registry <host:port>', 'registry to fetch models from', '127.0.0.1:8011')
  .option('--cache-dir <dir>', 'where verified artifacts are cached', join(defaultDataDir(), 'cache'))
  .option('--tls-dir <dir>', 'CA and service certificates: serve mutual TLS (routers need their certificate) and dial the registry with TLS (env NEXUS_TLS_DIR); default plaintext')
  .option('--insecure', 'allow listening beyond loopback without TLS (env NEXUS_INSECURE=1)')
  .parse()
  .opts<{ address: string; metricsAddress: string; registry: string; cacheDir: string; tlsDir?: string; insecure?: boolean }>();

await runServiceProcess('executor', async () => {
  // Routers authenticate by the certificate mutual TLS requires: no TLS, no authentication.
  const tls = await loadServiceTls('executor', tlsDirFrom(options.tlsDir), 'required');
  enforceBindPolicy({
    service: 'executor', address: options.address, tls: tls !== undefined, authentication: tls !== undefined,
    insecure: options.insecure === true || process.env.NEXUS_INSECURE === '1',
  });
  return startExecutor({
    address: options.address, registryAddress: options.registry, cacheDir: options.cacheDir, drainDelayMs: drainDelayMs(),
    credentials: tls?.server, registryCredentials: tls?.dial('registry'),
  });
}, {
  metricsAddress: options.metricsAddress,
});
