/**
 * The mapping of a NexusError to a gRPC status: a refusal with a retry delay carries
 * `retry-after` and a google.rpc.Status with RetryInfo, decoded here by protobufjs from the
 * messages' own definitions (a decoder other than the encoder that wrote them).
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../services/domain/index.ts';
import { retryStatusBytes, toServiceError } from '../../services/rpc/status.ts';
import { decodeRetryStatus } from './status-details.ts';

describe('toServiceError', () => {
  it('sends a plain error as its code and message, with no trailers of its own', () => {
    const status = toServiceError(new NexusError(ErrorCode.NOT_FOUND, "no model 'x'"));
    expect(status.code).toBe(ErrorCode.NOT_FOUND);
    expect(status.details).toBe("no model 'x'");
    expect(status.metadata?.getMap()).toEqual({});
  });

  it('sends a retry delay as retry-after in whole seconds and as google.rpc.RetryInfo', () => {
    const message = 'rate limit of key:aaaaaaaaaaaa: requests_per_second (5, burst 5); retry in 1.3 s';
    const status = toServiceError(new NexusError(ErrorCode.RESOURCE_EXHAUSTED, message, { retryAfterMs: 1_250 }));
    expect(status.code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
    expect(status.metadata?.get('retry-after')).toEqual(['2']);
    const [details] = status.metadata!.get('grpc-status-details-bin') as Buffer[];
    expect(decodeRetryStatus(details)).toEqual({
      code: ErrorCode.RESOURCE_EXHAUSTED,
      message,
      details: [{ type_url: 'type.googleapis.com/google.rpc.RetryInfo', retry_delay: { seconds: 1, nanos: 250_000_000 } }],
    });
  });

  it('encodes long and whole-second delays, leaving zero fields out as proto3 does', () => {
    const day = decodeRetryStatus(retryStatusBytes(ErrorCode.RESOURCE_EXHAUSTED, 'quota', 86_399_000));
    expect(day.details[0].retry_delay).toEqual({ seconds: 86_399, nanos: 0 });
    const short = decodeRetryStatus(retryStatusBytes(ErrorCode.RESOURCE_EXHAUSTED, 'busy', 100));
    expect(short.details[0].retry_delay).toEqual({ seconds: 0, nanos: 100_000_000 });
    // The tail is Any.value = RetryInfo {retry_delay: Duration {nanos: 100 000 000}}, and no seconds field.
    const bytes = retryStatusBytes(ErrorCode.RESOURCE_EXHAUSTED, '', 100);
    expect([...bytes.subarray(-9)]).toEqual([0x12, 0x07, 0x0a, 0x05, 0x10, 0x80, 0xc2, 0xd7, 0x2f]);
  });
});
