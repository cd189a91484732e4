/**
 * The edge between NexusML's coded errors and gRPC: a NexusError's code is a google.rpc.Code, so
 * it becomes the call's status as it is; this is the one place that builds grpc-js's status object.
 */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import type { NexusError } from '../domain/errors.ts';

/** The object grpc-js sends as the call's status for `error`. */
export function toServiceError(error: NexusError): Partial<ServiceError> {
  return { code: error.code, details: error.message, metadata: new Metadata() };
}
