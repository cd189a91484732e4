/**
 * Starts a gRPC server with what every NexusML service offers besides its own API:
 * grpc.health.v1 (overall and per service), server reflection (so grpcurl can list and call
 * everything), large-message limits and a graceful shutdown.
 */
import { Server, ServerCredentials, type ServiceDefinition, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath, type ServingStatus } from 'grpc-health-check';
import type { ServerOptions as Http2ServerOptions } from 'node:http2';
import { resolve } from 'node:path';
import type { ServiceAccess } from '../auth/access.ts';
import { guardedImplementation, type ServerAuth } from './access-guard.ts';
import { rejectUndecodableRequests, withTotalDeserializers } from './decode-guard.ts';

export const PROTO_ROOT = resolve(import.meta.dirname, '../../proto');
const HEALTH_SERVICE = 'grpc.health.v1.Health';

/** One of our services to mount on a server. */
export interface ServiceMount {
  /** Fully qualified name, e.g. "inference.GRPCInferenceService"; also its health-check name. */
  name: string;
  /** The .proto file that declares it, relative to proto/ (for reflection). */
  protoFile: string;
  definition: ServiceDefinition;
  implementation: UntypedServiceImplementation;
  /**
   * Methods (as the definition names them) whose handlers answer an undecodable message
   * themselves (`undecodableReason`); every other method's call ends INVALID_ARGUMENT. Default none.
   */
  answersUndecodableMessages?: readonly string[];
  /**
   * What each method requires (services/auth/access.ts), keyed as the definition names methods.
   * Required when the server authenticates (`auth`): a mount without it fails the start, and a
   * method missing from it is refused PERMISSION_DENIED. Unused without `auth`.
   */
  access?: ServiceAccess;
}

export interface GrpcServerOptions {
  /** host:port to bind; port 0 picks a free port. */
  address: string;
  services: ServiceMount[];
  /**
   * Largest message accepted or sent, in bytes. Default 64 MiB. A compressed request is held to
   * it after decompression (grpc-js 1.14 stops inflating past it and answers RESOURCE_EXHAUSTED).
   */
  maxMessageBytes?: number;
  /** Streams (calls) one client connection may have open at once; more wait in the client. Default 1 000. */
  maxConcurrentStreams?: number;
  /**
   * Memory one HTTP/2 connection may buffer, in MiB; past it new calls on that connection are
   * refused (RESOURCE_EXHAUSTED at the client) until it drains. Default 4 × maxMessageBytes.
   */
  maxSessionMemoryMiB?: number;
  /**
   * RST_STREAM frames one connection may send in a burst before the server closes it, and the
   * rate they refill at, per second. Node's defaults (1 000 and 33) close the connection of a
   * client whose calls' deadlines pass by the thousand (each one cancels its stream), failing
   * every other call on it with INTERNAL. Default 20 000 and 2 000 per second.
   */
  streamResets?: { burst: number; perSecond: number };
  /**
   * How long a shutdown keeps answering NOT_SERVING before it stops listening, in milliseconds,
   * so load balancers and Kubernetes endpoints notice first. Default 0.
   */
  drainDelayMs?: number;
  /** How the port is secured: TLS or mutual TLS from services/tls/. Default plaintext. */
  credentials?: ServerCredentials;
  /**
   * Authentication: every method of every mounted service (health and reflection excepted)
   * authenticates the call and checks the mount's `access` table before its handler runs, which
   * reads the principal with `principalOf(call)` (call-principal.ts). Default none: every call
   * is ANONYMOUS, as for a server started with --insecure.
   */
  auth?: ServerAuth;
}

export interface RunningServer {
  server: Server;
  /** The bound port (the chosen one when asked for 0). */
  port: number;
  /** host:port a client on this machine can dial. */
  address: string;
  /**
   * Serves grpc.health.v1 alone, with the same statuses, on a second, plaintext port, for probes
   * that cannot speak TLS (Kubernetes' native gRPC probes); resolves with its host:port. It
   * carries no credentials and no data, only SERVING / NOT_SERVING, so it may listen beyond
   * loopback whatever the bind policy says of the service's own port. Closed with the server.
   */
  serveHealth(address: string): Promise<string>;
  /** Sets the health of one service ('' = the whole server). */
  setHealth(service: string, status: ServingStatus): void;
  /**
   * Marks the server not ready ('' , 'readiness' and every service NOT_SERVING) while it keeps
   * answering, so load balancers stop sending before it stops listening. 'liveness' stays SERVING.
   */
  drain(): void;
  /** Drains, stops accepting calls, lets running ones finish for up to `graceMs`, then forces. */
  shutdown(graceMs?: number): Promise<void>;
}

/** Starts a server with health and reflection; resolves once it is bound. */
export async function startGrpcServer(options: GrpcServerOptions): Promise<RunningServer> {
  const maxMessageBytes = options.maxMessageBytes ?? 64 * 1024 * 1024;
  const server = new Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    // Channelz (call and socket statistics for a channelz service, which we do not serve) costs
    // every call a few trackers and clock reads; our own metrics count calls.
    'grpc.enable_channelz': 0,
    'grpc.max_concurrent_streams': options.maxConcurrentStreams ?? 1_000,
    'grpc-node.max_session_memory': options.maxSessionMemoryMiB ?? Math.ceil((4 * maxMessageBytes) / (1024 * 1024)),
    interceptors: [rejectUndecodableRequests],
  });
  // grpc-js hands http2.createServer only the options it knows; the reset limits go in beside them.
  // They stay bounded (with max_concurrent_streams) so a rapid-reset flood still closes the session.
  const streamResets = options.streamResets ?? { burst: 20_000, perSecond: 2_000 };
  const http2Options = (server as unknown as { commonServerOptions?: Http2ServerOptions }).commonServerOptions;
  if (typeof http2Options !== 'object') throw new Error('this grpc-js no longer keeps commonServerOptions; set the HTTP/2 stream-reset limits another way');
  Object.assign(http2Options, { streamResetBurst: streamResets.burst, streamResetRate: streamResets.perSecond });
  for (const service of options.services) {
    const implementation = options.auth ? guardedImplementation(service, options.auth) : service.implementation;
    server.addService(withTotalDeserializers(service.definition, service.answersUndecodableMessages), implementation);
  }

  // '' and 'readiness' answer "send me traffic"; 'liveness' answers "do not restart me".
  const health = new HealthImplementation({ '': 'SERVING', liveness: 'SERVING', readiness: 'SERVING' });
  for (const service of options.services) health.setStatus(service.name, 'SERVING');
  health.addToServer(server);

  // Relative names, so descriptors are named as their imports name them (grpcurl fetches by name).
  const reflectedFiles = options.services.map((service) => service.protoFile);
  const packageDefinition = loadSync([...reflectedFiles, healthProtoPath], {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  new ReflectionService(packageDefinition, {
    services: [...options.services.map((service) => service.name), HEALTH_SERVICE],
  }).addToServer(server);

  const port = await new Promise<number>((resolvePort, reject) => {
    server.bindAsync(options.address, options.credentials ?? ServerCredentials.createInsecure(), (error, boundPort) =>
      error ? reject(error) : resolvePort(boundPort));
  });
  const dialHostOf = (address: string) => {
    const host = address.slice(0, address.lastIndexOf(':'));
    return host === '0.0.0.0' || host === '[::]' || host === '' ? '127.0.0.1' : host;
  };
  const dialHost = dialHostOf(options.address);
  const healthServers: Server[] = [];
  const serveHealth = async (address: string) => {
    const probes = new Server({ 'grpc.enable_channelz': 0 });
    health.addToServer(probes);
    const healthPort = await new Promise<number>((resolvePort, reject) => {
      probes.bindAsync(address, ServerCredentials.createInsecure(), (error, boundPort) => (error ? reject(error) : resolvePort(boundPort)));
    }).catch((error: Error) => {
      throw new Error(`cannot listen for health probes on ${address}: ${error.message}`, { cause: error });
    });
    healthServers.push(probes);
    return `${dialHostOf(address)}:${healthPort}`;
  };

  let shutdownPromise: Promise<void> | undefined;
  const drain = () => {
    for (const service of ['', 'readiness', ...options.services.map((mounted) => mounted.name)]) health.setStatus(service, 'NOT_SERVING');
  };
  return {
    server,
    port,
    address: `${dialHost}:${port}`,
    serveHealth,
    setHealth: (service, status) => health.setStatus(service, status),
    drain,
    shutdown(graceMs = 5_000) {
      shutdownPromise ??= new Promise<void>((done) => {
        drain();
        setTimeout(done, options.drainDelayMs ?? 0);
      }).then(() => new Promise<void>((done) => {
        health.setStatus('liveness', 'NOT_SERVING');
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        force.unref();
        server.tryShutdown(() => {
          clearTimeout(force);
          // Probes are answered (NOT_SERVING) until the service's own port has closed.
          for (const probes of healthServers) probes.forceShutdown();
          done();
        });
      }));
      return shutdownPromise;
    },
  };
}
