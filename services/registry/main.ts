#!/usr/bin/env node
/**
 * The registry as a process:
 *   node services/registry/main.ts --address 127.0.0.1:8011 --data-dir DIR
 *   node services/registry/main.ts --store s3 --store-bucket models --store-endpoint http://minio:9000
 * Without --store flags the store comes from NEXUS_STORE_* variables, then a .nexusrc found from
 * the working directory up, then the local --data-dir (see store/store-config.ts).
 */
import { Command } from 'commander';
import { drainDelayMs, runServiceProcess } from '../rpc/service-process.ts';
import { startRegistry } from './server.ts';
import { defaultDataDir } from '../domain/index.ts';
import { join } from 'node:path';
import { resolveStoreConfig, STORE_PROVIDERS, type StoreConfig } from './store/index.ts';

const options = new Command('nexus-registry')
  .option('--metrics-address <host:port>', 'where /metrics is served for Prometheus', '127.0.0.1:8012')
  .option('--address <host:port>', 'address to listen on', '127.0.0.1:8011')
  .option('--data-dir <dir>', 'the local store\'s directory', join(defaultDataDir(), 'registry'))
  .option('--store <provider>', `where blobs and records are kept: ${STORE_PROVIDERS.join(', ')} (env NEXUS_STORE_PROVIDER)`)
  .option('--store-bucket <bucket>', 'S3 or GCS bucket (env NEXUS_STORE_BUCKET)')
  .option('--store-prefix <prefix>', 'key prefix inside the bucket (env NEXUS_STORE_PREFIX)')
  .option('--store-endpoint <url>', 'S3-compatible endpoint or GCS emulator (env NEXUS_STORE_ENDPOINT)')
  .option('--store-region <region>', 'S3 region (env NEXUS_STORE_REGION)')
  .option('--watch-poll-ms <ms>', 'how often Watch looks for events from other registry processes', '500')
  .parse()
  .opts<{
    address: string; metricsAddress: string; dataDir: string; store?: string; storeBucket?: string; storePrefix?: string;
    storeEndpoint?: string; storeRegion?: string; watchPollMs: string;
  }>();

let store: StoreConfig;
try {
  store = resolveStoreConfig({
    cwd: process.cwd(),
    env: process.env,
    defaultPath: options.dataDir,
    flags: {
      provider: options.store as StoreConfig['provider'] | undefined, bucket: options.storeBucket, prefix: options.storePrefix,
      endpoint: options.storeEndpoint, region: options.storeRegion,
    },
  }).config;
} catch (error) {
  console.error(`registry: ${(error as Error).message}`);
  process.exit(2);
}

await runServiceProcess('registry', () => startRegistry({
  address: options.address, store, drainDelayMs: drainDelayMs(), watchPollIntervalMs: Number(options.watchPollMs),
}), {
  metricsAddress: options.metricsAddress,
});
