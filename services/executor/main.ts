#!/usr/bin/env node
/**
 * An executor as a process: node services/executor/main.ts --registry 127.0.0.1:8011 [--adapter N].
 * `--list-adapters [--gpus all|0,2]` prints the adapters (and the ones --gpus names) as JSON and exits.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { join } from 'node:path';
import { defaultDataDir } from '../domain/data-dir.ts';
import { drainDelayMs, runServiceProcess } from '../rpc/service-process.ts';
import { enforceBindPolicy, loadServiceTls, tlsDirFrom } from '../tls/index.ts';
import { metricsRegistry } from '../telemetry/metrics.ts';
import { listAdapters, selectAdapters } from './gpu/index.ts';
import { startExecutor } from './service/index.ts';

const adapterIndex = (value: string) => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`expected an adapter index (0, 1, ...; see --list-adapters), got '${value}'`);
  return value;
};

const options = new Command('nexus-executor')
  .option('--metrics-address <host:port>', 'where /metrics is served for Prometheus', '127.0.0.1:8022')
  .addOption(new Option('--health-address <host:port>', 'a plaintext port serving grpc.health.v1 alone, for probes that cannot speak TLS (Kubernetes gRPC probes); default none').env('NEXUS_HEALTH_ADDRESS'))
  .option('--address <host:port>', 'address to listen on', '127.0.0.1:8021')
  .option('--registry <host:port>', 'registry to fetch models from', '127.0.0.1:8011')
  .option('--cache-dir <dir>', 'where verified artifacts are cached', join(defaultDataDir(), 'cache'))
  .option('--tls-dir <dir>', 'CA and service certificates: serve mutual TLS (routers need their certificate) and dial the registry with TLS (env NEXUS_TLS_DIR); default plaintext')
  .option('--insecure', 'allow listening beyond loopback without TLS (env NEXUS_INSECURE=1)')
  .addOption(new Option('--adapter <index>', 'the WebGPU adapter to run on, by its index in --list-adapters; default Dawn\'s first choice')
    .argParser(adapterIndex).env('NEXUS_ADAPTER'))
  .option('--list-adapters', 'print the adapters as JSON ({"adapters": [...], "selected": [...]}) and exit')
  .option('--gpus <all|0,2>', 'with --list-adapters: the adapter indices this names, in "selected"')
  .parse()
  .opts<{
    address: string; metricsAddress: string; healthAddress?: string; registry: string; cacheDir: string; tlsDir?: string; insecure?: boolean;
    adapter?: string; listAdapters?: boolean; gpus?: string;
  }>();

if (options.listAdapters) {
  const adapters = await listAdapters();
  try {
    const selected = options.gpus === undefined ? undefined : selectAdapters(options.gpus, adapters);
    console.log(JSON.stringify({ adapters, selected }));
    process.exit(0);
  } catch (error) {
    console.error((error as Error).message);
    process.exit(2);
  }
}
// Every metric of an executor pinned to an adapter says which (several run on one machine).
if (options.adapter !== undefined) metricsRegistry.setDefaultLabels({ adapter: options.adapter });

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
    gpu: options.adapter === undefined ? undefined : { adapterIndex: Number(options.adapter) },
  });
}, {
  metricsAddress: options.metricsAddress,
  healthAddress: options.healthAddress,
});
