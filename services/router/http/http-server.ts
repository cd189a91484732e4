/**
 * The router's HTTP port (fastify, HTTP/1.1 with keep-alive): the Open Inference Protocol's REST
 * API with the binary tensor and generate extensions (oip-routes.ts, generate-routes.ts), the
 * OpenAI-compatible API (openai-routes.ts) and the dashboard with its JSON API
 * (dashboard-routes.ts). Every route is a thin translation onto the same request path, generation
 * path, authenticator, access tables and rate limiter as the gRPC methods it mirrors.
 *
 * Bodies: JSON up to the router's public message budget; a body with the binary tensor extension
 * (Inference-Header-Content-Length) or any other content type is read as bytes up to the same
 * bound. CORS is off unless an origin is configured.
 */
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { AddressInfo } from 'node:net';
import { ErrorCode, invalidArgument, NexusError } from '../../domain/index.ts';
import { registerDashboardRoutes } from './dashboard-routes.ts';
import { registerGenerateRoutes } from './generate-routes.ts';
import { HttpEdge } from './http-edge.ts';
import { errorHeaders, httpStatusOf, kserveErrorBody, openAiErrorBody } from './http-status.ts';
import { registerOipRoutes } from './oip-routes.ts';
import { registerOpenAiRoutes } from './openai-routes.ts';
import { BINARY_HEADER, parseJsonBody, type HttpServerParts, type RouteContext } from './route-context.ts';

export interface RunningHttpServer {
  /** host:port it listens on. */
  address: string;
  close(): Promise<void>;
}


/** A fastify error (malformed JSON, a body over the limit, an unsupported type) as a coded error and its status. */
function fromFastifyError(error: FastifyError, maxBodyBytes: number): { coded: NexusError; status: number } {
  if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return {
      status: 413,
      coded: new NexusError(ErrorCode.RESOURCE_EXHAUSTED, `the request body is over the router's budget of ${maxBodyBytes} bytes (max_message_bytes); send fewer rows per request`),
    };
  }
  const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 400;
  return { status, coded: invalidArgument(`the request body could not be read: ${error.message}`) };
}

/** Answers a failed request with the status and body shape of the API it called. */
function answerError(reply: FastifyReply, request: FastifyRequest, edge: HttpEdge, error: unknown, maxBodyBytes: number): void {
  let coded: NexusError;
  let status: number;
  const fastifyError = error as Partial<FastifyError>;
  if (!(error instanceof NexusError) && typeof fastifyError.code === 'string' && fastifyError.code.startsWith('FST_')) {
    ({ coded, status } = fromFastifyError(error as FastifyError, maxBodyBytes));
  } else {
    coded = NexusError.from(error);
    status = httpStatusOf(coded.code);
  }
  edge.failed(request, coded, error);
  if (reply.sent || reply.raw.headersSent) {
    // A stream already under way reports its own errors (sse.ts); nothing more can be said here.
    reply.raw.destroy();
    return;
  }
  const openAi = request.url.startsWith('/v1/');
  reply.code(status).headers(errorHeaders(coded)).type('application/json').send(openAi ? openAiErrorBody(coded) : kserveErrorBody(coded));
}

/** host and port of "host:port" ("[::1]:8000" included). */
function hostAndPort(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const port = Number(address.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`the HTTP address must be host:port, got '${address}'`);
  return { host: address.slice(0, at).replace(/^\[|\]$/g, '') || '127.0.0.1', port };
}

/** Sets the CORS headers for a configured origin; answers a preflight. True when it answered. */
function corsAnswered(origin: string, request: FastifyRequest, reply: FastifyReply): boolean {
  const from = request.headers.origin;
  if (origin !== '*' && from !== origin) return false;
  reply.header('access-control-allow-origin', origin === '*' ? '*' : origin);
  reply.header('vary', 'Origin');
  reply.header('access-control-expose-headers', 'inference-header-content-length, retry-after');
  if (request.method !== 'OPTIONS') return false;
  reply.header('access-control-allow-methods', 'GET, POST, OPTIONS');
  reply.header('access-control-allow-headers', 'authorization, content-type, inference-header-content-length, traceparent, tracestate');
  reply.header('access-control-max-age', '600');
  reply.code(204).send();
  return true;
}

/** Starts the HTTP port; rejects when it cannot listen. */
export async function startHttpServer(parts: HttpServerParts): Promise<RunningHttpServer> {
  const { host, port } = hostAndPort(parts.address);
  const app = Fastify({
    logger: false,
    bodyLimit: parts.maxBodyBytes,
    keepAliveTimeout: 75_000,
    forceCloseConnections: 'idle',
    ...(parts.tls ? { https: { cert: parts.tls.cert, key: parts.tls.key, ca: parts.tls.clientCa, requestCert: parts.tls.clientCa !== undefined, rejectUnauthorized: parts.tls.clientCa !== undefined } } : {}),
  }) as unknown as FastifyInstance;
  const edge = new HttpEdge({ authenticator: parts.authenticator, logger: parts.logger });

  // Every body is read as bytes and decided on here: JSON unless the binary extension says otherwise.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body: Buffer, done) => {
    if (request.headers[BINARY_HEADER] !== undefined) return done(null, body);
    try {
      done(null, parseJsonBody(body.toString('utf8')));
    } catch (error) {
      done(error as Error, undefined);
    }
  });
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body: Buffer, done) => done(null, body));

  app.addHook('onRequest', async (request, reply) => {
    edge.opened(request);
    reply.header('x-content-type-options', 'nosniff');
    if (parts.corsOrigin !== undefined && corsAnswered(parts.corsOrigin, request, reply)) return reply;
    return undefined;
  });
  app.addHook('onResponse', async (request, reply) => edge.closed(request, reply));
  app.setErrorHandler((error, request, reply) => answerError(reply, request, edge, error, parts.maxBodyBytes));
  app.setNotFoundHandler((request, reply) => {
    answerError(reply, request, edge, new NexusError(ErrorCode.NOT_FOUND, `no route ${request.method} ${request.url.split('?')[0].slice(0, 200)}`), parts.maxBodyBytes);
  });

  const routes: RouteContext = { app, edge, parts };
  registerOipRoutes(routes);
  registerGenerateRoutes(routes);
  registerOpenAiRoutes(routes);
  if (parts.dashboard) registerDashboardRoutes(routes, parts.dashboard);

  await app.listen({ host, port });
  const bound = app.server.address() as AddressInfo;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  parts.logger.info({ address: `${shownHost}:${bound.port}`, tls: parts.tls !== undefined, cors: parts.corsOrigin ?? null }, 'router HTTP listening');
  return {
    address: `${shownHost}:${bound.port}`,
    async close() {
      // Streams still open after the drain are cut rather than waited for.
      const closing = app.close();
      const timer = setTimeout(() => app.server.closeAllConnections(), 2_000);
      await closing.finally(() => clearTimeout(timer));
    },
  };
}
