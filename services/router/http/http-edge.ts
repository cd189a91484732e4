/**
 * What every HTTP route shares with the gRPC method it mirrors: the caller authenticated by the
 * same authenticator (`authorization: Bearer <API key or JWT>`, or a NexusML service's verified
 * certificate under mutual TLS), authorized by the same access-table entry (role and model
 * globs), a server span that continues the caller's `traceparent`, the HTTP metrics, and the
 * cancellation of a request whose client went away.
 */
import { TLSSocket } from 'node:tls';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { Counter, Histogram } from 'prom-client';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { authorize, type MethodAccess } from '../../auth/access.ts';
import type { Authenticator, CallCredentials } from '../../auth/authenticator.ts';
import { ANONYMOUS, type Principal } from '../../auth/principal.ts';
import { codeName, ErrorCode, NexusError } from '../../domain/index.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { metricsRegistry } from '../../telemetry/metrics.ts';
import { tracerFor } from '../../telemetry/tracing.ts';
import type { CancelSignal } from '../batching/index.ts';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The router's HTTP port: calls by route pattern (never the raw path, so clients cannot mint series) and status. */
export const httpMetrics = {
  requests: new Counter({
    name: 'nexus_http_requests_total', help: 'HTTP requests answered by the router, by route pattern, method and status.',
    labelNames: ['route', 'method', 'status'], registers: [metricsRegistry],
  }),
  duration: new Histogram({
    name: 'nexus_http_duration_seconds', help: 'Time to answer an HTTP request (to the end of its stream, for SSE), by route pattern.',
    labelNames: ['route'], buckets: LATENCY_BUCKETS, registers: [metricsRegistry],
  }),
};

const tracer = tracerFor('router');

/** What an HTTP route mirrors: the gRPC method as clients name it, and its access-table entry. */
export interface MirroredMethod {
  label: string;
  access: MethodAccess;
}

const headerGetter = {
  keys: (carrier: FastifyRequest['headers']) => Object.keys(carrier),
  get: (carrier: FastifyRequest['headers'], key: string) => {
    const value = carrier[key];
    return Array.isArray(value) ? value[0] : value;
  },
};

/** The parts of an HTTP request authentication reads, as the authenticator reads a gRPC call's. */
export function credentialsOf(request: Pick<FastifyRequest, 'headers' | 'raw'>): CallCredentials {
  return {
    metadata: {
      get: (key) => {
        const value = request.headers[key];
        return value === undefined ? [] : Array.isArray(value) ? value : [value];
      },
    },
    getAuthContext: () => {
      const socket = request.raw.socket;
      return socket instanceof TLSSocket && socket.authorized ? { sslPeerCertificate: socket.getPeerCertificate() } : {};
    },
  };
}

export interface HttpEdgeOptions {
  /** Undefined: authentication off (--insecure), every caller ANONYMOUS. */
  authenticator?: Authenticator;
  logger: Logger;
}

export class HttpEdge {
  private readonly authenticator: Authenticator | undefined;
  readonly logger: Logger;
  private readonly principals = new WeakMap<FastifyRequest, Principal>();
  private readonly spans = new WeakMap<FastifyRequest, { span: Span; startedMs: number }>();

  constructor(options: HttpEdgeOptions) {
    this.authenticator = options.authenticator;
    this.logger = options.logger;
  }

  /**
   * The caller of `request`, authorized for `method` on `modelName` (when it names one). Throws
   * UNAUTHENTICATED or PERMISSION_DENIED as the gRPC method would; remembered for the request.
   */
  async admit(request: FastifyRequest, method: MirroredMethod, modelName?: string): Promise<Principal> {
    const principal = await this.authenticate(request);
    authorize(principal, method.access, method.label, modelName);
    return principal;
  }

  /** The caller of `request`, authenticated (once per request), not yet authorized for anything. */
  async authenticate(request: FastifyRequest): Promise<Principal> {
    const known = this.principals.get(request);
    if (known) return known;
    const principal = this.authenticator ? await this.authenticator.authenticate(credentialsOf(request)) : ANONYMOUS;
    this.principals.set(request, principal);
    return principal;
  }

  /** The bearer credential as sent, to pass on to the registry on the caller's behalf; undefined without one. */
  authorizationOf(request: FastifyRequest): string | undefined {
    const value = request.headers.authorization;
    return typeof value === 'string' && value !== '' ? value : undefined;
  }

  /** Opens the request's server span, a child of the caller's traceparent (onRequest hook). */
  opened(request: FastifyRequest): void {
    const parent = propagation.extract(ROOT_CONTEXT, request.headers, headerGetter);
    const route = request.routeOptions.url ?? 'unmatched';
    const span = tracer.startSpan(`${request.method} ${route}`, {
      kind: SpanKind.SERVER, attributes: { 'http.request.method': request.method, 'http.route': route, 'url.path': request.url.split('?')[0] },
    }, parent);
    this.spans.set(request, { span, startedMs: performance.now() });
  }

  /** Runs a handler inside the request's span, so the request path's spans are its children. */
  within<T>(request: FastifyRequest, work: () => Promise<T>): Promise<T> {
    const opened = this.spans.get(request);
    return opened ? context.with(trace.setSpan(context.active(), opened.span), work) : work();
  }

  /** Records a failure on the request's span; INTERNAL ones are logged in full, others at debug. */
  failed(request: FastifyRequest, error: NexusError, cause: unknown): void {
    const opened = this.spans.get(request);
    opened?.span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    const route = request.routeOptions.url ?? 'unmatched';
    const traceIds = opened ? { trace_id: opened.span.spanContext().traceId } : {};
    if (error.code === ErrorCode.INTERNAL) this.logger.error({ err: cause, route, ...traceIds }, 'internal error');
    else this.logger.debug({ route, code: codeName(error.code), reason: error.message, ...traceIds }, 'request failed');
  }

  /** Ends the request's span and counts it (onResponse hook, after the last byte, streams included). */
  closed(request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions.url ?? 'unmatched';
    const opened = this.spans.get(request);
    httpMetrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
    if (!opened) return;
    httpMetrics.duration.observe({ route }, (performance.now() - opened.startedMs) / 1000);
    opened.span.setAttribute('http.response.status_code', reply.statusCode);
    if (reply.statusCode >= 500) opened.span.setStatus({ code: SpanStatusCode.ERROR });
    opened.span.end();
    this.spans.delete(request);
  }
}

/** A signal that fires when the client goes away before its answer is written in full. */
export function cancellationOf(reply: FastifyReply): CancelSignal & { readonly aborted: boolean } {
  const controller = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) controller.abort();
  });
  return controller.signal;
}
