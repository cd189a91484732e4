/**
 * OpenTelemetry tracing for a NexusML process. Off unless an OTLP endpoint is configured with the
 * standard variables (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); then
 * spans go over OTLP/HTTP protobuf, e.g. to Jaeger on :4318. The W3C `traceparent` travels in gRPC
 * metadata, so one request is one trace across client, router, executor and registry.
 */
import {
  context, propagation, SpanStatusCode, trace, type Context, type Link, type Span, type SpanOptions, type Tracer,
} from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { NodeSDK } from '@opentelemetry/sdk-node';
import type { Metadata } from '@grpc/grpc-js';

let sdk: NodeSDK | undefined;

// Propagation and the active context work even with exporting off, so a client's traceparent is
// still read, passed on, and printed in log lines.
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

/** True when the environment names an OTLP endpoint for traces. */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) && env.OTEL_SDK_DISABLED !== 'true';
}

/**
 * Starts the process's tracer provider when an endpoint is configured; OTEL_SERVICE_NAME, if
 * set, wins over `serviceName`. Safe to call more than once.
 *
 * The SDK and exporter are imported only here: they weigh ~40 MB of resident memory, which a
 * process with tracing off (the default) should not carry.
 */
export async function startTracing(serviceName: string): Promise<void> {
  if (sdk || !tracingConfigured()) return;
  const [{ NodeSDK }, { OTLPTraceExporter }] = await Promise.all([
    import('@opentelemetry/sdk-node'), import('@opentelemetry/exporter-trace-otlp-proto'),
  ]);
  if (sdk) return;
  sdk = new NodeSDK({
    serviceName: process.env.OTEL_SERVICE_NAME ?? serviceName,
    traceExporter: new OTLPTraceExporter(),
    textMapPropagator: new W3CTraceContextPropagator(),
    contextManager: new AsyncLocalStorageContextManager(),
  });
  sdk.start();
}

/** Flushes and stops tracing (spans still buffered are exported). */
export async function stopTracing(): Promise<void> {
  const running = sdk;
  sdk = undefined;
  await running?.shutdown().catch(() => {});
}

/** The tracer of one service, e.g. tracerFor('router'). */
export function tracerFor(service: string): Tracer {
  return trace.getTracer(`nexus.${service}`);
}

const metadataGetter = {
  keys: (carrier: Metadata) => Object.keys(carrier.getMap()),
  get: (carrier: Metadata, key: string) => {
    const values = carrier.get(key);
    return values.length > 0 ? String(values[0]) : undefined;
  },
};

/** The context a caller sent in gRPC metadata (traceparent / tracestate), or the root context. */
export function contextFromMetadata(metadata: Metadata): Context {
  return propagation.extract(context.active(), metadata, metadataGetter);
}

/** Writes `ctx` (default: the active context) into gRPC metadata for a downstream call. */
export function injectIntoMetadata(metadata: Metadata, ctx: Context = context.active()): Metadata {
  propagation.inject(ctx, metadata, { set: (carrier, key, value) => carrier.set(key, value) });
  return metadata;
}

/** A span's context as a plain map (for our own proto messages between router and executor). */
export function carrierOf(span: Span | undefined): Record<string, string> {
  const carrier: Record<string, string> = {};
  if (span) propagation.inject(trace.setSpan(context.active(), span), carrier);
  return carrier;
}

/** The context carried by a plain map written by carrierOf. */
export function contextFromCarrier(carrier: Record<string, string> | undefined): Context {
  return propagation.extract(context.active(), carrier ?? {});
}

/** A link to a span, for a batch span that served many requests. */
export function linkTo(span: Span): Link {
  return { context: span.spanContext() };
}

/**
 * Runs `work` inside a new span (child of `parent`, default the active context), ending it when
 * the work settles and recording an error if it throws.
 */
export async function inSpan<T>(
  tracer: Tracer,
  name: string,
  options: SpanOptions & { parent?: Context },
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(name, options, parent);
  try {
    return await context.with(trace.setSpan(parent, span), () => work(span));
  } catch (error) {
    recordFailure(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/**
 * Runs synchronous `work` inside a new span, child of the active context, ending it when the work
 * returns and recording an error if it throws. The span is not made the active one while the work
 * runs (entering a context costs more than a short step does), so `work` must start no spans of
 * its own: for short, pure steps such as validating a request.
 */
export function inSyncSpan<T>(tracer: Tracer, name: string, options: SpanOptions, work: () => T): T {
  const span = tracer.startSpan(name, options);
  try {
    return work();
  } catch (error) {
    recordFailure(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Marks a span failed with the error that ended it. */
function recordFailure(span: Span, error: unknown): void {
  span.recordException(error as Error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
}
