/**
 * The edge between NexusML's coded errors and gRPC: a NexusError's code is a google.rpc.Code, so
 * it becomes the call's status as it is; this is the one place that builds grpc-js's status object.
 *
 * A refusal that says when to come back (`retryAfterMs`, a rate limit) carries it twice in the
 * trailers: `retry-after` in whole seconds, which any client or proxy can read, and the richer
 * gRPC error model (`grpc-status-details-bin`: a google.rpc.Status whose details hold a
 * google.rpc.RetryInfo), which Google's client libraries and grpcio-status decode.
 */
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { NexusError } from '../domain/errors.ts';

const RETRY_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.RetryInfo';

/** The object grpc-js sends as the call's status for `error`. */
export function toServiceError(error: NexusError): Partial<ServiceError> {
  const metadata = new Metadata();
  if (error.retryAfterMs !== undefined) {
    metadata.set('retry-after', String(Math.ceil(error.retryAfterMs / 1000)));
    metadata.set('grpc-status-details-bin', Buffer.from(retryStatusBytes(error.code, error.message, error.retryAfterMs)));
  }
  return { code: error.code, details: error.message, metadata };
}

/**
 * google.rpc.Status {code, message, details: [Any(google.rpc.RetryInfo {retry_delay})]} in the
 * protobuf wire format. Written by hand with the wire writer: three small, frozen messages do
 * not warrant generated code. Zero fields are left out, as proto3 encoders do. Pure.
 */
export function retryStatusBytes(code: number, message: string, retryAfterMs: number): Uint8Array {
  const delayMs = Math.max(0, Math.ceil(retryAfterMs));
  const seconds = Math.floor(delayMs / 1000);
  const nanos = (delayMs % 1000) * 1_000_000;
  const writer = new BinaryWriter();
  if (code !== 0) writer.tag(1, WireType.Varint).int32(code);
  if (message) writer.tag(2, WireType.LengthDelimited).string(message);
  writer.tag(3, WireType.LengthDelimited).fork(); // details[0]: google.protobuf.Any
  writer.tag(1, WireType.LengthDelimited).string(RETRY_INFO_TYPE_URL);
  writer.tag(2, WireType.LengthDelimited).fork(); // Any.value: the RetryInfo's bytes
  writer.tag(1, WireType.LengthDelimited).fork(); // RetryInfo.retry_delay: google.protobuf.Duration
  if (seconds !== 0) writer.tag(1, WireType.Varint).int64(seconds);
  if (nanos !== 0) writer.tag(2, WireType.Varint).int32(nanos);
  return writer.join().join().join().finish();
}
