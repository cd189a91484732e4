#!/usr/bin/env node
/** An executor as a process: node services/executor/main.ts --registry 127.0.0.1:8011 */
import { Command } from 'commander';
import { join } from 'node:path';
import { defaultDataDir } from '../domain/data-dir.ts';
import { drainDelayMs, runServiceProcess } from '../rpc/service-process.ts';
import { startExecutor } from './service/index.ts';

const options = new Command('nexus-executor')
  .option('--metrics-address <host:port>', 'where /metrics is served for Prometheus', '127.0.0.1:8022')
  .option('--address <host:port>', 'address to listen on', '127.0.0.1:8021')
  .option('--registry <host:port>', 'registry to fetch models from', '127.0.0.1:8011')
  .option('--cache-dir <dir>', 'where verified artifacts are cached', join(defaultDataDir(), 'cache'))
  .parse()
  .opts<{ address: string; metricsAddress: string; registry: string; cacheDir: string }>();

await runServiceProcess('executor', () =>
  startExecutor({ address: options.address, registryAddress: options.registry, cacheDir: options.cacheDir, drainDelayMs: drainDelayMs() }), {
  metricsAddress: options.metricsAddress,
});
