/**
 * Wraps async functions as grpc-js handlers. A handler may throw only NexusError; anything else
 * is logged in full and answered as INTERNAL, so a bug never leaks a stack trace to a client
 * nor crashes the process.
 */
import { context, SpanKind, SpanStatusCode, trace, type SpanOptions, type Tracer } from '@opentelemetry/api';
import type {
  handleClientStreamingCall, handleServerStreamingCall, handleUnaryCall, Metadata, ServerReadableStream,
  ServerUnaryCall, ServerWritableStream, ServiceError,
} from '@grpc/grpc-js';
import type { Logger } from '../telemetry/logger.ts';
import { metrics } from '../telemetry/metrics.ts';
import { contextFromMetadata, tracerFor } from '../telemetry/tracing.ts';
import { codeName, ErrorCode, NexusError } from '../domain/errors.ts';
import { toServiceError } from './status.ts';
import { undecodableDetails, undecodableReason } from './decode-guard.ts';

/**
 * What every call of one method shares: its service and method labels, resolved once when the
 * handler is made rather than on every call (reading a logger's bindings parses JSON).
 */
interface MethodObservation {
  method: string;
  service: string;
  tracer: Tracer;
  /** Shared by every call's span (span processors copy attributes, never keep the object). */
  spanOptions: SpanOptions;
  logger: Logger;
  durationLabels: { service: string; method: string };
  /** Counter labels by status code, built on first use. */
  requestLabels: Map<number, { service: string; method: string; code: string }>;
}

function observationOf(method: string, logger: Logger): MethodObservation {
  const service = String(logger.bindings().service ?? 'unknown');
  return {
    method, service, tracer: tracerFor(service), logger, durationLabels: { service, method }, requestLabels: new Map(),
    spanOptions: { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': method } },
  };
}

/**
 * Runs one call's handler inside a server span parented by the caller's traceparent, and counts
 * it. `run` resolves or rejects with the call's outcome.
 */
function observed<T>(observation: MethodObservation, metadata: Metadata, run: () => Promise<T>): Promise<T> {
  const { method, service, logger } = observation;
  const span = observation.tracer.startSpan(method, observation.spanOptions, contextFromMetadata(metadata));
  const started = performance.now();
  const finish = (code: number, message?: string) => {
    metrics.rpcDuration.observe(observation.durationLabels, (performance.now() - started) / 1000);
    let labels = observation.requestLabels.get(code);
    if (!labels) {
      labels = { service, method, code: codeName(code) };
      observation.requestLabels.set(code, labels);
    }
    metrics.rpcRequests.inc(labels);
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
      const coded = NexusError.from(error);
      finish(coded.code, coded.message);
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
  return toServiceError(coded);
}

export function unary<Req, Res>(
  method: string,
  logger: Logger,
  handler: (request: Req, call: ServerUnaryCall<Req, Res>) => Promise<Res>,
): handleUnaryCall<Req, Res> {
  const observation = observationOf(method, logger);
  return (call, callback) => {
    const undecodable = undecodableError(call);
    if (undecodable) {
      callback(toStatus(undecodable, method, logger) as ServiceError);
      return;
    }
    observed(observation, call.metadata, () => handler(call.request, call)).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toStatus(error, method, logger) as ServiceError),
    );
  };
}

/** INVALID_ARGUMENT when the call's one request could not be decoded (see decode-guard.ts). */
function undecodableError(call: { request: unknown; getPath(): string }): NexusError | undefined {
  const reason = undecodableReason(call.request);
  return reason === undefined ? undefined : new NexusError(ErrorCode.INVALID_ARGUMENT, undecodableDetails(call.getPath(), reason));
}

/** A stream the client cancelled fails with its reading cut short; that is the client's doing, not ours. */
const cancelledByClient = (cause: unknown) => new NexusError(ErrorCode.CANCELLED, 'the client cancelled the call', { cause });

export function clientStream<Req, Res>(
  method: string,
  logger: Logger,
  handler: (call: ServerReadableStream<Req, Res>) => Promise<Res>,
): handleClientStreamingCall<Req, Res> {
  const observation = observationOf(method, logger);
  return (call, callback) => {
    observed(observation, call.metadata, () => handler(call)).then(
      (response) => callback(null, response),
      (error: unknown) => callback(toStatus(call.cancelled ? cancelledByClient(error) : error, method, logger) as ServiceError),
    );
  };
}

export function serverStream<Req, Res>(
  method: string,
  logger: Logger,
  handler: (request: Req, call: ServerWritableStream<Req, Res>) => Promise<void>,
): handleServerStreamingCall<Req, Res> {
  const observation = observationOf(method, logger);
  return (call) => {
    const undecodable = undecodableError(call);
    if (undecodable) {
      call.emit('error', toStatus(undecodable, method, logger));
      return;
    }
    observed(observation, call.metadata, () => handler(call.request, call)).then(
      () => call.end(),
      (error: unknown) => call.emit('error', toStatus(error, method, logger)),
    );
  };
}
