/**
 * Wraps async functions as grpc-js handlers. A handler may throw only NexusError; anything else
 * is logged in full and answered as INTERNAL, so a bug never leaks a stack trace to a client
 * nor crashes the process.
 */
import type {
  handleClientStreamingCall, handleServerStreamingCall, handleUnaryCall, ServerReadableStream,
  ServerUnaryCall, ServerWritableStream, ServiceError,
} from '@grpc/grpc-js';
import type { Logger } from '../telemetry/logger.ts';
import { ErrorCode, NexusError } from './errors.ts';

function toStatus(error: unknown, method: string, logger: Logger): Partial<ServiceError> {
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
    handler(call.request, call).then(
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
    handler(call).then(
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
    handler(call.request, call).then(
      () => call.end(),
      (error: unknown) => call.emit('error', toStatus(error, method, logger)),
    );
  };
}
