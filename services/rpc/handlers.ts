/**
 * Wraps async functions as grpc-js handlers. A handler may throw only NexusError; anything else
 * is logged in full and answered as INTERNAL, so a bug never leaks a stack trace to a client
 * nor crashes the process.
 */
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type {
  handleClientStreamingCall, handleServerStreamingCall, handleUnaryCall, Metadata, ServerReadableStream,
  ServerUnaryCall, ServerWritableStream, ServiceError,
} from '@grpc/grpc-js';
import type { Logger } from '../telemetry/logger.ts';
import { metrics } from '../telemetry/metrics.ts';
import { contextFromMetadata, tracerFor } from '../telemetry/tracing.ts';
import { codeName, ErrorCode, NexusError } from './errors.ts';

/**
 * Runs one call's handler inside a server span parented by the caller's traceparent, and counts
 * it. `run` resolves or rejects with the call's outcome.
 */
function observed<T>(method: string, logger: Logger, metadata: Metadata, run: () => Promise<T>): Promise<T> {
  const service = String(logger.bindings().service ?? 'unknown');
  const span = tracerFor(service).startSpan(method, { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': method } }, contextFromMetadata(metadata));
  const stopTimer = metrics.rpcDuration.startTimer({ service, method });
  const finish = (code: number, message?: string) => {
    stopTimer();
    metrics.rpcRequests.inc({ service, method, code: codeName(code) });
    span.setAttribute('rpc.grpc.status_code', code);
    if (code !== 0) span.setStatus({ code: SpanStatusCode.ERROR, message });
    span.end();
  };
  return context.with(trace.setSpan(context.active(), span), run).then(
    (value) => {
      finish(0);
      return value;
    },
    (error: unknown) => {
      finish(NexusError.from(error).code, NexusError.from(error).message);
      // Logged here, where the span is known, so the line carries the trace id.
      const { traceId, spanId } = span.spanContext();
      throw new ObservedError(error, logger.child({ trace_id: traceId, span_id: spanId }));
    },
  );
}

/** A handler's failure, with a logger that carries the call's trace. */
class ObservedError {
  readonly error: unknown;
  readonly logger: Logger;

  constructor(error: unknown, logger: Logger) {
    this.error = error;
    this.logger = logger;
  }
}

function toStatus(failure: unknown, method: string, fallbackLogger: Logger): Partial<ServiceError> {
  const error = failure instanceof ObservedError ? failure.error : failure;
  const logger = failure instanceof ObservedError ? failure.logger : fallbackLogger;
  const coded = NexusError.from(error);
  if (coded.code === ErrorCode.INTERNAL) logger.error({ err: error, method }, 'internal error');
  else logger.debug({ method, code: coded.code, reason: coded.message }, 'request failed');
  return coded.toServiceError();
}

export function unary<Req, Res>(
  method: string,
  logger: Logger,
  handler: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  return (call, callback) => {
    observed(method, logger, call.metadata, () => handler(call.request, call)).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toStatus(error, method, logger) as ServiceError),
    );
  };
}

export function clientStream<Req, Res>(
  method: string,
  logger: Logger,
  handler: (call: ServerReadableStream<Req, Res>) => Promise<Res>,
): handleClientStreamingCall<Req, Res> {
  return (call, callback) => {
    observed(method, logger, call.metadata, () => handler(call)).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toStatus(error, method, logger) as ServiceError),
    );
  };
}

export function serverStream<Req, Res>(
  method: string,
  logger: Logger,
  handler: (request: Req, call: ServerWritableStream<Req, Res>) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  return (call) => {
    observed(method, logger, call.metadata, () => handler(call.request, call)).then(
      () => call.end(),
      (error: unknown) => call.emit('error', toStatus(error, method, logger)),
    );
  };
}
