/**
 * The transport under an executor link: the part of the Connect stream a link uses, and the
 * gRPC dialer that opens it. Tests stand in for an executor by giving a link another dialer.
 */
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { ExecutorClient, type ExecutorMessage, type RouterMessage } from '../../protocol/generated/nexus/executor/v1/executor.ts';

/** One open Connect stream: messages down with `write`, answers up as 'data'. */
export interface ExecutorStream {
  write(message: RouterMessage): unknown;
  on(event: 'data', listener: (message: ExecutorMessage) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'close' | 'end', listener: () => void): unknown;
  end(): void;
  cancel(): void;
}

/** Opens streams to one executor; a link opens a new one after each loss. */
export interface ExecutorDialer {
  connect(): ExecutorStream;
  close(): void;
}

/**
 * A dialer over gRPC, with 64 MiB messages and keepalive pings so a half-open connection is
 * noticed. `channelCredentials` default plaintext; an executor with TLS requires the router's
 * certificate (services/tls/: channelCredentials of the router's material).
 */
export function grpcExecutorDialer(address: string, channelCredentials: ChannelCredentials = credentials.createInsecure()): ExecutorDialer {
  const client = new ExecutorClient(address, channelCredentials, {
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
  });
  return { connect: () => client.connect(), close: () => client.close() };
}
