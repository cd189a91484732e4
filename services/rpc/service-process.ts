/**
 * Runs one service as its own process: starts it, announces where it listens (a JSON line on
 * stdout, and an IPC message when a parent such as `nexus up` is listening), and on SIGTERM or
 * SIGINT stops accepting, drains for a bounded time and exits 0.
 */
import { startMetricsServer, type MetricsServer } from '../telemetry/metrics-server.ts';
import { startTracing, stopTracing } from '../telemetry/tracing.ts';
import type { RunningServer } from './server.ts';

/** The message a service process sends its parent once it listens. */
export interface ListeningMessage {
  event: 'listening';
  service: string;
  address: string;
  /** Where Prometheus scrapes it (http://…/metrics). */
  metricsAddress: string;
  /** The plaintext grpc.health.v1 port for probes, when asked for (--health-address). */
  healthAddress?: string;
}

/** How long a stopping service waits for calls in flight, in milliseconds. */
export const DRAIN_TIMEOUT_MS = 10_000;

/**
 * NEXUS_DRAIN_DELAY_MS, default 2000: how long a stopping service answers NOT_SERVING before it
 * closes, so Kubernetes takes it out of the endpoints first.
 */
export function drainDelayMs(): number {
  const value = Number(process.env.NEXUS_DRAIN_DELAY_MS ?? 2000);
  return Number.isFinite(value) && value >= 0 ? value : 2000;
}

export async function runServiceProcess(
  service: string,
  start: () => Promise<RunningServer>,
  options: { metricsAddress: string; healthAddress?: string },
): Promise<void> {
  await startTracing(`nexus-${service}`);
  let running: RunningServer;
  let metricsServer: MetricsServer;
  let healthAddress: string | undefined;
  try {
    running = await start();
    metricsServer = await startMetricsServer(options.metricsAddress);
    if (options.healthAddress) healthAddress = await running.serveHealth(options.healthAddress);
  } catch (error) {
    console.error(`${service} failed to start: ${(error as Error).message}`);
    process.exit(1);
  }
  const message: ListeningMessage = { event: 'listening', service, address: running.address, metricsAddress: metricsServer.address, healthAddress };
  console.log(JSON.stringify(message));
  process.send?.(message);

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(JSON.stringify({ event: 'stopping', service, signal }));
    await running.shutdown(DRAIN_TIMEOUT_MS);
    await metricsServer.close();
    await stopTracing();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  // A parent that dies without signalling must not leave this process running.
  process.on('disconnect', () => void stop('parent exited'));
}
