/** Starts an executor: opens the GPU, then serves the Connect stream, health and reflection. */
import { credentials, type ChannelCredentials, type ServerCredentials } from '@grpc/grpc-js';
import type { ServiceAccess } from '../../auth/access.ts';
import { createAuthenticator } from '../../auth/authenticator.ts';
import { RegistryClient } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { startGrpcServer, type RunningServer } from '../../rpc/server.ts';
import { createLogger } from '../../telemetry/logger.ts';
import { reportGpuBusy } from '../../telemetry/metrics.ts';
import { ArtifactCache } from './artifact-cache.ts';
import { createExecutorService, ExecutorService } from './executor-service.ts';
import { ExecutorState } from './executor-state.ts';
import { budgetFromEnv, compileBudgetsFromEnv, DEFAULT_GPU_BUDGET_BYTES } from './gpu-budget.ts';
import { registryVersionSource } from './version-trust.ts';
import { DEFAULT_WARM_UP_BUDGET_BYTES } from './warm-up.ts';
import { openGpu, type GpuContext, type OpenGpuOptions } from '../gpu/index.ts';
import { peerServiceIdentity } from '../../tls/index.ts';

/**
 * How long an executor whose device is lost waits before exiting by default, in milliseconds:
 * 200, so the UNAVAILABLE answers already written reach their routers first.
 */
const DEVICE_LOST_EXIT_DELAY_MS = 200;

/** Only a router, by its certificate, may open the Connect stream or read the statistics. */
const EXECUTOR_ACCESS: ServiceAccess = {
  connect: { servicesOnly: ['router'] },
  getStats: { servicesOnly: ['router'] },
};

/** Largest gRPC message the executor receives or sends by default: 64 MiB. */
const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface ExecutorOptions {
  /** host:port to bind. Default 127.0.0.1:0. */
  address?: string;
  /** The registry to fetch version records and artifacts from, host:port. */
  registryAddress: string;
  /** Where verified artifacts are cached. */
  cacheDir: string;
  /** Least time between turning NOT_SERVING and closing, in milliseconds. Default 0. */
  drainDelayMs?: number;
  /**
   * GPU memory all loaded models may hold together, in bytes (weights plus each model's largest
   * warm-up batch). Default: NEXUS_GPU_BUDGET_BYTES, else 4 GiB.
   */
  gpuBudgetBytes?: number;
  /**
   * Most bytes of zero inputs one warm-up batch may allocate (at a version's max_batch_size);
   * a load needing more fails RESOURCE_EXHAUSTED. Default: NEXUS_WARM_UP_BUDGET_BYTES, else 256 MiB.
   */
  warmUpBudgetBytes?: number;
  /** Largest gRPC message received or sent, in bytes; a batch result over it is sent in chunks. Default 64 MiB. */
  maxMessageBytes?: number;
  /** Most output bytes of one batch result; a batch over it fails RESOURCE_EXHAUSTED alone. Default 1 GiB. */
  maxResultBytes?: number;
  /**
   * Called once the GPU device is lost (after health turned NOT_SERVING and batches in flight
   * were answered UNAVAILABLE), so a supervisor can restart the process. Default: exit with code 1
   * after DEVICE_LOST_EXIT_DELAY_MS (200 ms), so those answers leave the process first.
   */
  onDeviceLost?: (reason: string) => void;
  /**
   * How the port is secured; default plaintext. A deployment gives it mutual TLS that requires
   * a client certificate from its CA (services/tls/: serverCredentials with 'required'). With
   * credentials the executor also authenticates every call: Connect and GetStats answer only a
   * client whose certificate names the router (PERMISSION_DENIED for another service's).
   */
  credentials?: ServerCredentials;
  /** How the registry is dialed; default plaintext. With TLS: the executor's own certificate (channelCredentials). */
  registryCredentials?: ChannelCredentials;
  /** Which adapter to open (--adapter INDEX: `adapterIndex`). Default: Dawn's first choice. */
  gpu?: OpenGpuOptions;
}

export interface RunningExecutor extends RunningServer {
  state: ExecutorState;
  gpu: GpuContext;
}

export async function startExecutor(options: ExecutorOptions): Promise<RunningExecutor> {
  const logger = createLogger('executor');
  const gpuBudgetBytes = options.gpuBudgetBytes ?? budgetFromEnv('NEXUS_GPU_BUDGET_BYTES', process.env.NEXUS_GPU_BUDGET_BYTES, DEFAULT_GPU_BUDGET_BYTES);
  const warmUpBudgetBytes = options.warmUpBudgetBytes
    ?? budgetFromEnv('NEXUS_WARM_UP_BUDGET_BYTES', process.env.NEXUS_WARM_UP_BUDGET_BYTES, DEFAULT_WARM_UP_BUDGET_BYTES);
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const gpu = await openGpu(options.gpu);
  const registry = new RegistryClient(options.registryAddress, options.registryCredentials ?? credentials.createInsecure(), {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  });
  // Each text-generation model's paged KV cache: a quarter of the GPU budget unless set.
  const kvBudgetBytes = budgetFromEnv('NEXUS_KV_BUDGET_BYTES', process.env.NEXUS_KV_BUDGET_BYTES, Math.floor(gpuBudgetBytes / 4));
  const state = new ExecutorState(gpu, new ArtifactCache(options.cacheDir, registry), logger, {
    versions: registryVersionSource(registry), gpuBudgetBytes, warmUpBudgetBytes, compileBudgets: compileBudgetsFromEnv(process.env), kvBudgetBytes,
  });
  const stopReportingGpuBusy = reportGpuBusy(state.gpuBusy);
  const running = await startGrpcServer({
    address: options.address ?? '127.0.0.1:0',
    drainDelayMs: options.drainDelayMs,
    credentials: options.credentials,
    // Certificates are the executor's only credentials, so there is nothing to check on plaintext.
    auth: options.credentials && { authenticator: createAuthenticator({ serviceIdentityOf: peerServiceIdentity }), logger },
    maxMessageBytes,
    services: [{
      name: 'nexus.executor.v1.Executor',
      protoFile: 'nexus/executor/v1/executor.proto',
      definition: ExecutorService,
      access: EXECUTOR_ACCESS,
      implementation: createExecutorService(state, { device: gpu.description, maxMessageBytes, maxResultBytes: options.maxResultBytes }, logger),
    }],
  });
  logger.info({ address: running.address, device: gpu.description, gpuBudgetBytes, warmUpBudgetBytes, kvBudgetBytes }, 'executor listening');

  let shuttingDown = false;
  const onDeviceLost = options.onDeviceLost ?? (() => {
    // Writes leave the process on later turns of the event loop; an exit now would drop them.
    setTimeout(() => process.exit(1), DEVICE_LOST_EXIT_DELAY_MS);
  });
  void gpu.device.lost.then((info) => {
    // Our own destroy at shutdown also settles `lost`; only an unexpected loss counts.
    if (shuttingDown) return;
    const reason = `${info.reason ?? 'unknown'}${info.message ? `: ${info.message}` : ''}`;
    logger.error({ reason }, 'GPU device lost; serving nothing more and exiting so a supervisor restarts the executor');
    running.drain();
    running.setHealth('liveness', 'NOT_SERVING');
    state.deviceLost(reason);
    onDeviceLost(reason);
  });

  const shutdown = running.shutdown;
  return {
    ...running,
    state,
    gpu,
    async shutdown(graceMs) {
      await shutdown(graceMs);
      registry.close();
      stopReportingGpuBusy();
      shuttingDown = true;
      gpu.destroy();
    },
  };
}
