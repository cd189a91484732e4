/**
 * Structured JSON logs on stderr, one object a line. Level from NEXUS_LOG_LEVEL (default "info").
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const root = pino(
  { level: process.env.NEXUS_LOG_LEVEL ?? 'info', base: { pid: process.pid } },
  pino.destination({ fd: 2, sync: true }),
);

/** A logger whose lines carry `service` (and any other fixed fields). */
export function createLogger(service: string, fields: Record<string, unknown> = {}): Logger {
  return root.child({ service, ...fields });
}
