/**
 * The router's Watch stream against a scripted registry: where each connection starts, resends
 * dropped, reconnects from the last cursor with growing backoff, and a re-read only when the
 * stream cannot vouch for continuity (the first connection, a refused cursor).
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import { expect, it } from 'vitest';
import type { WatchRequest, WatchResponse } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { RegistryWatcher, type WatchStream } from '../../../services/router/models/registry-watch.ts';
import { pino } from 'pino';

class FakeStream extends EventEmitter implements WatchStream {
  cancelled = false;
  cancel(): void {
    this.cancelled = true;
    this.emit('error', Object.assign(new Error('cancelled'), { code: status.CANCELLED, details: 'cancelled', metadata: undefined }));
  }
  event(cursor: number, version: number): void {
    this.emit('data', { cursor, recordedAtUnixMs: 0, versionCreated: { modelName: 'iris', version } } as unknown as WatchResponse);
  }
  caughtUp(cursor: number): void {
    this.emit('data', { cursor, recordedAtUnixMs: 0, caughtUp: { cursor } } as WatchResponse);
  }
  fail(code: status, details = 'broken'): void {
    this.emit('error', Object.assign(new Error(details), { code, details }) as unknown as ServiceError);
  }
}

function setUp() {
  const requests: WatchRequest[] = [];
  const streams: FakeStream[] = [];
  const applied: number[] = [];
  let resyncs = 0;
  const delays: number[] = [];
  let lastConnectAt = Date.now();
  const watcher = new RegistryWatcher({
    watch(request) {
      delays.push(Date.now() - lastConnectAt);
      lastConnectAt = Date.now();
      requests.push(request);
      const stream = new FakeStream();
      streams.push(stream);
      return stream;
    },
  }, {
    onEvent: (event) => applied.push(event.versionCreated!.version),
    onResync: () => {
      resyncs += 1;
    },
    logger: pino({ level: 'silent' }),
    minBackoffMs: 20,
    maxBackoffMs: 80,
    random: () => 0.5,
  });
  const nextStream = async (count: number) => {
    for (const started = Date.now(); streams.length < count;) {
      if (Date.now() - started > 2000) throw new Error(`no connection ${count} after 2 s`);
      await new Promise((wake) => setTimeout(wake, 5));
    }
    lastConnectAt = Date.now();
    return streams[count - 1];
  };
  return { watcher, requests, streams, applied, delays, nextStream, resyncs: () => resyncs };
}

it('starts from now, re-reads once caught up, and applies each event once, in order', async () => {
  const { watcher, requests, applied, nextStream, resyncs } = setUp();
  watcher.start();
  const first = await nextStream(1);
  expect(requests[0]).toMatchObject({ fromNow: true });
  first.caughtUp(10);
  expect(resyncs()).toBe(1);
  expect(watcher.live).toBe(true);
  first.event(11, 2);
  first.event(11, 2); // a resend
  first.event(12, 3);
  expect(applied).toEqual([2, 3]);
  expect(watcher.cursor).toBe(12);
  watcher.close();
});

it('reconnects after the last cursor with growing backoff, without re-reading, and drops replayed events', async () => {
  const { watcher, requests, applied, delays, nextStream, resyncs } = setUp();
  watcher.start();
  const first = await nextStream(1);
  first.caughtUp(4);
  first.event(5, 1);
  first.fail(status.UNAVAILABLE);
  expect(watcher.live).toBe(false);

  // Two failed attempts: the delay doubles each time (20, 40, then 80 ms with random() = 0.5).
  (await nextStream(2)).fail(status.UNAVAILABLE);
  (await nextStream(3)).fail(status.UNAVAILABLE);
  const fourth = await nextStream(4);
  expect(requests.slice(1).map((request) => [request.fromNow, request.afterCursor])).toEqual([[false, 5], [false, 5], [false, 5]]);
  expect(delays[1]).toBeGreaterThanOrEqual(15);
  expect(delays[3]).toBeGreaterThanOrEqual(60);

  // The registry replays from the cursor; an overlap with what was applied is dropped.
  fourth.event(5, 1);
  fourth.event(6, 2);
  fourth.caughtUp(6);
  fourth.event(7, 3);
  expect(applied).toEqual([1, 2, 3]);
  expect(resyncs()).toBe(1);

  // A stream the registry ends cleanly (it shut its watchers) is resumed the same way.
  fourth.emit('end');
  const fifth = await nextStream(5);
  expect(requests[4]).toMatchObject({ fromNow: false, afterCursor: 7 });
  // Backoff was reset by the caught-up stream.
  expect(delays[4]).toBeLessThan(60);
  watcher.close();
  expect(fifth.cancelled).toBe(true);
});

it('starts over from now and re-reads when the registry refuses the cursor', async () => {
  const { watcher, requests, nextStream, resyncs, applied } = setUp();
  watcher.start();
  const first = await nextStream(1);
  first.caughtUp(50);
  first.fail(status.UNAVAILABLE);
  (await nextStream(2)).fail(status.OUT_OF_RANGE, 'after_cursor 50 is past the newest event (3)');
  const third = await nextStream(3);
  expect(requests[2]).toMatchObject({ fromNow: true });
  third.caughtUp(3);
  expect(resyncs()).toBe(2);
  third.event(4, 9);
  expect(applied).toEqual([9]);
  expect(watcher.cursor).toBe(4);
  watcher.close();
});

it('stops reconnecting once closed', async () => {
  const { watcher, streams, nextStream } = setUp();
  watcher.start();
  const first = await nextStream(1);
  watcher.close();
  expect(first.cancelled).toBe(true);
  await new Promise((wake) => setTimeout(wake, 150));
  expect(streams).toHaveLength(1);
});
