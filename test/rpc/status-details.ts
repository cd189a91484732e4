/**
 * Reads `grpc-status-details-bin` as Google's client libraries do: google.rpc.Status with its
 * RetryInfo details, decoded by protobufjs from the messages' own definitions (not by the
 * encoder that wrote them).
 */
import protobuf from 'protobufjs';

const root = new protobuf.Root();
protobuf.parse(`syntax = "proto3"; package google.protobuf;
  message Any { string type_url = 1; bytes value = 2; }
  message Duration { int64 seconds = 1; int32 nanos = 2; }`, root, { keepCase: true });
protobuf.parse(`syntax = "proto3"; package google.rpc;
  message Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
  message RetryInfo { google.protobuf.Duration retry_delay = 1; }`, root, { keepCase: true });
const StatusType = root.lookupType('google.rpc.Status');
const RetryInfoType = root.lookupType('google.rpc.RetryInfo');

interface DecodedStatus {
  code: number;
  message: string;
  details: Array<{ type_url: string; retry_delay: { seconds: number; nanos: number } }>;
}

/** google.rpc.Status with each detail unpacked as a RetryInfo. */
export function decodeRetryStatus(bytes: Uint8Array): DecodedStatus {
  const status = StatusType.toObject(StatusType.decode(bytes), { longs: Number, defaults: true }) as {
    code: number; message: string; details: Array<{ type_url: string; value: Uint8Array }>;
  };
  return {
    code: status.code,
    message: status.message,
    details: status.details.map((detail) => {
      const info = RetryInfoType.toObject(RetryInfoType.decode(detail.value), { longs: Number, defaults: true }) as { retry_delay: { seconds: number; nanos: number } };
      return { type_url: detail.type_url, retry_delay: info.retry_delay };
    }),
  };
}
