/**
 * An executor whose GPU is Dawn's null backend (null-gpu.ts): the real executor state, Connect
 * stream and artifact cache, composed as services/executor/service/server.ts composes them, with
 * only the device swapped. As a process it stands where `services/executor/main.ts` stands:
 *
 *   node bench/cpu/null-executor.ts --registry HOST:PORT --cache-dir DIR
 *
 * prints the same `listening` line and stops on SIGTERM or SIGINT.
 */
import { credentials } from '@grpc/grpc-js';
import { parseArgs } from 'node:util';
import { RegistryClient } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { runServiceProcess } from '../../services/rpc/service-process.ts';
import { startGrpcServer, type RunningServer } from '../../services/rpc/server.ts';
import { createLogger } from '../../services/telemetry/logger.ts';
import { reportGpuBusy } from '../../services/telemetry/metrics.ts';
import { ArtifactCache } from '../../services/executor/service/artifact-cache.ts';
import { createExecutorService, ExecutorService } from '../../services/executor/service/executor-service.ts';
import { ExecutorState } from '../../services/executor/service/executor-state.ts';
import { registryVersionSource } from '../../services/executor/service/version-trust.ts';
import { openNullGpu } from './null-gpu.ts';

const GIB = 1024 ** 3;

async function startNullExecutor(options: { registryAddress: string; cacheDir: string; address?: string }): Promise<RunningServer> {
  const logger = createLogger('executor');
  const gpu = await openNullGpu();
  const registry = new RegistryClient(options.registryAddress, credentials.createInsecure());
  const state = new ExecutorState(gpu, new ArtifactCache(options.cacheDir, registry), logger, {
    versions: registryVersionSource(registry), gpuBudgetBytes: 4 * GIB, warmUpBudgetBytes: 256 * 1024 * 1024,
  });
  // As server.ts does, so the measured work includes it (the null backend times nothing: 0).
  const stopReportingGpuBusy = reportGpuBusy(state.gpuBusy);
  const maxMessageBytes = 64 * 1024 * 1024;
  const running = await startGrpcServer({
    address: options.address ?? '127.0.0.1:0',
    maxMessageBytes,
    services: [{
      name: 'nexus.executor.v1.Executor',
      protoFile: 'nexus/executor/v1/executor.proto',
      definition: ExecutorService,
      implementation: createExecutorService(state, { device: gpu.description, maxMessageBytes }, logger),
    }],
  });
  const shutdown = running.shutdown;
  return {
    ...running,
    async shutdown(graceMs) {
      await shutdown(graceMs);
      registry.close();
      stopReportingGpuBusy();
      gpu.destroy();
    },
  };
}

/** This file, for spawning it. */
export const NULL_EXECUTOR_SCRIPT = import.meta.filename;

if (import.meta.main) {
  const { values } = parseArgs({ options: { registry: { type: 'string' }, 'cache-dir': { type: 'string' }, address: { type: 'string' } } });
  if (!values.registry || !values['cache-dir']) throw new Error('usage: node bench/cpu/null-executor.ts --registry HOST:PORT --cache-dir DIR');
  await runServiceProcess('executor', () => startNullExecutor({
    registryAddress: values.registry!, cacheDir: values['cache-dir']!, address: values.address,
  }), { metricsAddress: '127.0.0.1:0' });
}
