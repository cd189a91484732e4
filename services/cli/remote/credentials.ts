/**
 * What the CLI presents to the services: a bearer token on every call, and the CA that verifies
 * the registry's TLS certificate.
 *
 * - token: --token, then NEXUS_TOKEN, then `$NEXUS_HOME/credentials/admin.key` (the admin key
 *   `nexus up` had the registry write) when it is readable; none otherwise.
 * - registry CA: --ca-file, then NEXUS_TLS_CA, then `$NEXUS_HOME/tls/ca.crt` when it exists
 *   (`nexus up` creates it); without one the registry is dialed in plaintext.
 *
 * The token travels as `authorization: Bearer <token>` metadata added by a client interceptor,
 * not as grpc-js call credentials: those are refused on plaintext channels, and the router's
 * public port is plaintext on loopback by default. A token is never printed.
 */
import { credentials, InterceptingCall, type ChannelCredentials, type Interceptor } from '@grpc/grpc-js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultDataDir } from '../../domain/index.ts';

/** The CLI's global options (`nexus --token … --ca-file … <command>`). */
export interface ConnectionFlags {
  token?: string;
  caFile?: string;
  /** CA that verifies the router's public port when it serves TLS; absent: plaintext. */
  routerCa?: string;
}

/** Where a local deployment keeps its admin key and CA, when not under $NEXUS_HOME (`nexus up --data-dir`). */
interface LocalDeployment {
  adminKeyFile: string;
  caFile: string;
}

let flags: ConnectionFlags = {};
let deployment: LocalDeployment | undefined;

/** Sets the global options every client made afterwards uses; main.ts calls it before any command. */
export function configureConnection(given: ConnectionFlags): void {
  flags = { ...given };
}

/**
 * Makes the deployment `nexus up` just started the last resort for the token and the CA, in place
 * of $NEXUS_HOME's files: its own calls (storing the example, warming it up) then authenticate
 * whatever --data-dir it was given. --token, --ca-file and the variables still come first.
 */
export function useLocalDeployment(local: LocalDeployment): void {
  deployment = { ...local };
}

/** The admin key `nexus up` writes: `<data dir>/credentials/admin.key`. */
export const adminKeyPath = (dataDir: string = defaultDataDir()) => join(dataDir, 'credentials', 'admin.key');

/** The token to send, by the order in the module comment; undefined when there is none. */
export function resolveToken(given: ConnectionFlags = flags, env: NodeJS.ProcessEnv = process.env, dataDir = defaultDataDir()): string | undefined {
  if (given.token) return given.token.trim();
  if (env.NEXUS_TOKEN) return env.NEXUS_TOKEN.trim();
  try {
    return readFileSync(deployment?.adminKeyFile ?? adminKeyPath(dataDir), 'utf8').trim() || undefined;
  } catch {
    // Unreadable or absent: calls go without a token, and a server that needs one says so.
    return undefined;
  }
}

/** The CA file that verifies the registry, by the order in the module comment; undefined: plaintext. */
export function resolveRegistryCa(given: ConnectionFlags = flags, env: NodeJS.ProcessEnv = process.env, dataDir = defaultDataDir()): string | undefined {
  if (given.caFile) return given.caFile;
  if (env.NEXUS_TLS_CA) return env.NEXUS_TLS_CA;
  const local = deployment?.caFile ?? join(dataDir, 'tls', 'ca.crt');
  return existsSync(local) ? local : undefined;
}

/** An interceptor that adds `authorization: Bearer <token>` to every call it sees. */
export function bearerInterceptor(token: string): Interceptor {
  const value = `Bearer ${token}`;
  return (options, nextCall) => new InterceptingCall(nextCall(options), {
    start(metadata, listener, next) {
      metadata.set('authorization', value);
      next(metadata, listener);
    },
  });
}

/** The interceptors every client gets: the bearer token when there is one. */
export function callInterceptors(): Interceptor[] {
  const token = resolveToken();
  return token ? [bearerInterceptor(token)] : [];
}

/** TLS verified by the registry CA when one is found, else plaintext. */
export function registryChannelCredentials(): ChannelCredentials {
  return tlsOrPlaintext(resolveRegistryCa(), 'registry');
}

/**
 * How the router's public port is dialed: over TLS verified by --router-ca (env NEXUS_ROUTER_CA)
 * when given, as a router started with --tls-cert serves it (docker-compose.yml); plaintext
 * otherwise, as `nexus up` serves it on loopback.
 */
export function routerChannelCredentials(given: ConnectionFlags = flags, env: NodeJS.ProcessEnv = process.env): ChannelCredentials {
  return tlsOrPlaintext(given.routerCa || env.NEXUS_ROUTER_CA || undefined, 'router');
}

function tlsOrPlaintext(ca: string | undefined, service: string): ChannelCredentials {
  if (!ca) return credentials.createInsecure();
  let pem: Buffer;
  try {
    pem = readFileSync(ca);
  } catch (error) {
    throw new Error(`cannot read the ${service}'s CA certificate ${ca}: ${(error as Error).message}`, { cause: error });
  }
  return credentials.createSsl(pem);
}
