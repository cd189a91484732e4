/**
 * What the HTTP routes share: the parts of the router they are given, and reading a body that
 * may use the binary tensor extension (JSON, then the tensors' bytes).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Authenticator } from '../../auth/authenticator.ts';
import type { PrincipalLimiter } from '../../auth/rate-limits.ts';
import { invalidArgument, NexusError, type ModelKey } from '../../domain/index.ts';
import type { ExecutorHello, LoadedModel } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { GenerationPath, TritonDispatch } from '../generation/index.ts';
import type { ModelCatalog } from '../models/index.ts';
import type { RequestPath } from '../request-path/index.ts';
import type { DashboardRegistry } from './dashboard-registry.ts';
import type { HttpEdge } from './http-edge.ts';
import type { TrafficMonitor } from './traffic-monitor.ts';

export const BINARY_HEADER = 'inference-header-content-length';

/** What the dashboard shows of one executor link (ExecutorLink is one). */
export interface ExecutorView {
  readonly address: string;
  readonly ready: boolean;
  readonly circuitOpen: boolean;
  readonly inflight: number;
  readonly hello: ExecutorHello | undefined;
  readonly loaded: ReadonlySet<string>;
  loadedModel(key: ModelKey): LoadedModel | undefined;
  readonly runningSequences?: number;
}

export interface DashboardParts {
  registry: DashboardRegistry;
  traffic: TrafficMonitor;
  /** Every executor the router dials. */
  executors: () => readonly ExecutorView[];
}

export interface HttpServerParts {
  /** host:port to listen on (port 0 picks one). */
  address: string;
  requests: RequestPath;
  catalog: ModelCatalog;
  /** Text generation (the generate extension, the OpenAI API, Triton's vLLM convention on /infer). Default none. */
  generation?: { path: GenerationPath; triton: TritonDispatch };
  limiter: PrincipalLimiter;
  /** Undefined: authentication off (--insecure). */
  authenticator?: Authenticator;
  logger: Logger;
  /** /v2/health/ready: some executor is connected. */
  isServerReady: () => boolean;
  /** Largest request body, in bytes (the router's max_message_bytes). */
  maxBodyBytes: number;
  /** The origin browsers may call from (Access-Control-Allow-Origin), or '*'; undefined: no CORS. */
  corsOrigin?: string;
  /** PEM material to serve HTTPS with (the public port's --tls-cert / --tls-key / --tls-client-ca). Default plain HTTP. */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /** The dashboard's data; undefined: no dashboard. */
  dashboard?: DashboardParts;
}

/** What the routes of one API are given. */
export interface RouteContext {
  app: FastifyInstance;
  edge: HttpEdge;
  parts: HttpServerParts;
}

/** A JSON body, refusing '__proto__' keys, which could reach an object's prototype when copied. */
export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text, text.includes('"__proto__"') ? (key, value: unknown) => {
      if (key === '__proto__') throw invalidArgument('the request body has a "__proto__" key');
      return value;
    } : undefined);
  } catch (error) {
    if (error instanceof NexusError) throw error;
    throw invalidArgument(`the request body is not valid JSON: ${(error as Error).message}`);
  }
  return parsed;
}

/**
 * The body of a request that may use the binary tensor extension: the JSON header and the bytes
 * after it. Throws INVALID_ARGUMENT when the header length does not fit the body.
 */
export function binaryBodyOf(request: FastifyRequest): { json: unknown; binary: Uint8Array } {
  const header = request.headers[BINARY_HEADER];
  const body = request.body;
  if (header === undefined) {
    if (Buffer.isBuffer(body)) return { json: parseJsonBody(body.toString('utf8')), binary: new Uint8Array(0) };
    return { json: body, binary: new Uint8Array(0) };
  }
  const length = Number(header);
  const bytes = Buffer.isBuffer(body) ? body : Buffer.alloc(0);
  if (!Number.isSafeInteger(length) || length < 0 || length > bytes.byteLength) {
    throw invalidArgument(`the Inference-Header-Content-Length header is ${String(header).slice(0, 20)}, but the body has ${bytes.byteLength} bytes`);
  }
  return { json: parseJsonBody(bytes.subarray(0, length).toString('utf8')), binary: bytes.subarray(length) };
}

