#!/usr/bin/env node
/** The registry as a process: node services/registry/main.ts --address 127.0.0.1:8011 --data-dir DIR */
import { Command } from 'commander';
import { drainDelayMs, runServiceProcess } from '../rpc/service-process.ts';
import { startRegistry } from './server.ts';
import { defaultDataDir } from '../cli/config.ts';
import { join } from 'node:path';

const options = new Command('nexus-registry')
  .option('--metrics-address <host:port>', 'where /metrics is served for Prometheus', '127.0.0.1:8012')
  .option('--address <host:port>', 'address to listen on', '127.0.0.1:8011')
  .option('--data-dir <dir>', 'where blobs and records are kept', join(defaultDataDir(), 'registry'))
  .parse()
  .opts<{ address: string; metricsAddress: string; dataDir: string }>();

await runServiceProcess('registry', () => startRegistry({ address: options.address, dataDir: options.dataDir, drainDelayMs: drainDelayMs() }), {
  metricsAddress: options.metricsAddress,
});
