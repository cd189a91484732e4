/**
 * The router's copy of the registry's keys against a scripted WatchKeys stream: ready once the
 * snapshot arrives, changes applied as they come (a revocation refuses the key at once), and a
 * broken stream reopened with growing backoff, its snapshot replacing what was held.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, expect, it, vi } from 'vitest';
import { generateApiKey, parseApiKey } from '../../../services/auth/api-keys.ts';
import { KeyDirectory } from '../../../services/auth/key-directory.ts';
import { KeyVerifier, type WatchKeysResponse } from '../../../services/protocol/generated/nexus/auth/v1/keys.ts';
import { KeyFollower, type KeyWatchStream } from '../../../services/router/models/key-follower.ts';

class FakeStream extends EventEmitter implements KeyWatchStream {
  cancelled = false;
  cancel(): void {
    this.cancelled = true;
    this.emit('error', Object.assign(new Error('cancelled'), { code: status.CANCELLED, details: 'cancelled' }));
  }
  send(message: WatchKeysResponse): void {
    this.emit('data', message);
  }
  fail(code: status, details = 'broken'): void {
    this.emit('error', Object.assign(new Error(details), { code, details }) as unknown as ServiceError);
  }
}

function key(revoked = false) {
  const generated = generateApiKey();
  return {
    parsed: parseApiKey(generated.key)!,
    verifier: KeyVerifier.fromPartial({ info: { id: generated.id, role: 'infer', revokedAtUnixMs: revoked ? 1 : 0 }, secretSha256: generated.secretSha256 }),
  };
}

const accepted = (directory: KeyDirectory, presented: ReturnType<typeof key>['parsed']) => {
  try {
    return directory.authenticate(presented).kind === 'key';
  } catch {
    return false;
  }
};

afterEach(() => {
  vi.useRealTimers();
});

function setUp() {
  const streams: FakeStream[] = [];
  const directory = new KeyDirectory();
  const follower = new KeyFollower({
    watchKeys: () => {
      const stream = new FakeStream();
      streams.push(stream);
      return stream;
    },
  }, directory, { logger: pino({ level: 'silent' }), minBackoffMs: 100, maxBackoffMs: 400, random: () => 0.5 });
  return { streams, directory, follower };
}

it('is ready with the snapshot, then applies each change', () => {
  const { streams, directory, follower } = setUp();
  follower.start();
  const first = key();
  const later = key();
  expect(directory.ready).toBe(false);
  streams[0].send({ snapshot: true, keys: [first.verifier] });
  expect(directory.ready).toBe(true);
  expect(accepted(directory, first.parsed)).toBe(true);
  expect(accepted(directory, later.parsed)).toBe(false);
  streams[0].send({ snapshot: false, keys: [later.verifier] });
  expect(accepted(directory, later.parsed)).toBe(true);
  streams[0].send({ snapshot: false, keys: [{ ...first.verifier, info: { ...first.verifier.info!, revokedAtUnixMs: 9 } }] });
  expect(accepted(directory, first.parsed)).toBe(false);
  follower.close();
  expect(streams[0].cancelled).toBe(true);
});

it('reconnects with doubling backoff and takes the new snapshot, keeping the old keys meanwhile', () => {
  vi.useFakeTimers();
  const { streams, directory, follower } = setUp();
  follower.start();
  const gone = key();
  const kept = key();
  streams[0].send({ snapshot: true, keys: [gone.verifier, kept.verifier] });
  streams[0].fail(status.UNAVAILABLE);
  // Still the last keys it heard while it cannot hear more.
  expect(accepted(directory, gone.parsed)).toBe(true);
  vi.advanceTimersByTime(99);
  expect(streams).toHaveLength(1);
  vi.advanceTimersByTime(1);
  expect(streams).toHaveLength(2);
  streams[1].fail(status.UNIMPLEMENTED);
  vi.advanceTimersByTime(199);
  expect(streams).toHaveLength(2);
  vi.advanceTimersByTime(1);
  expect(streams).toHaveLength(3);
  streams[2].send({ snapshot: true, keys: [kept.verifier] });
  expect(accepted(directory, gone.parsed)).toBe(false);
  expect(accepted(directory, kept.parsed)).toBe(true);
  // A snapshot resets the backoff.
  streams[2].emit('end');
  vi.advanceTimersByTime(100);
  expect(streams).toHaveLength(4);
  follower.close();
  vi.advanceTimersByTime(10_000);
  expect(streams).toHaveLength(4);
});
