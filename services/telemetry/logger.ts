/**
 * Structured JSON logs on stderr, one object a line. Level from NEXUS_LOG_LEVEL (default "info").
 */
import { trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';

export type { Logger };

const root = pino(
  {
    level: process.env.NEXUS_LOG_LEVEL ?? 'info',
    base: { pid: process.pid },
    // Every line logged inside a traced request carries its trace, to jump from a log to Jaeger.
    mixin() {
      const span = trace.getActiveSpan()?.spanContext();
      return span && span.traceId !== '00000000000000000000000000000000' ? { trace_id: span.traceId, span_id: span.spanId } : {};
    },
  },
  pino.destination({ fd: 2, sync: true }),
);

/** A logger whose lines carry `service` (and any other fixed fields). */
export function createLogger(service: string, fields: Record<string, unknown> = {}): Logger {
  return root.child({ service, ...fields });
}
