/**
 * The registry's global event log, kept in the store itself: `events/000000000001.json`, … Each
 * event is created with a create-only write at the number after the newest one seen, so two
 * registry processes never write the same number and never leave a gap (number N+1 is only tried
 * once N is known to exist). A reader that has seen cursor N lists the keys after N; since the
 * numbers are gap-free it gets every later event, each once, in order.
 *
 * Watchers in this process are woken at once by appends made here, and by a poll of the store
 * (every `pollIntervalMs`, only while somebody waits) for appends made by other processes.
 */
import type { AliasMove, ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, NexusError } from '../../domain/index.ts';
import { PreconditionFailedError, type ObjectStore } from '../store/index.ts';

/** One recorded event; exactly one of the payload fields is set. */
export interface RegistryEvent {
  /** Position in the global order, from 1 without gaps. */
  cursor: number;
  recordedAtUnixMs: number;
  versionCreated?: ModelVersion;
  aliasMoved?: AliasMove;
}

export type EventPayload = Pick<RegistryEvent, 'versionCreated' | 'aliasMoved'>;

/** Where a watcher starts: after this cursor (0: from the first event), or 'now' (the newest). */
export type WatchCursor = number | 'now';

/**
 * What a watcher receives: every event after its cursor, in order, each once; and, once, when
 * it has seen everything recorded so far, the cursor it has reached.
 */
export type WatchItem =
  | { kind: 'event'; event: RegistryEvent }
  | { kind: 'caught-up'; cursor: number; recordedAtUnixMs: number };

const EVENTS_PREFIX = 'events/';
const eventKey = (cursor: number) => `${EVENTS_PREFIX}${String(cursor).padStart(12, '0')}.json`;
const cursorOfKey = (key: string) => {
  const match = /^events\/(\d{12,})\.json$/.exec(key);
  return match ? Number(match[1]) : undefined;
};

export interface EventLogOptions {
  /** How often waiting watchers look for events other processes appended, in ms. Default 500. */
  pollIntervalMs?: number;
}

export class EventLog {
  private readonly store: ObjectStore;
  private readonly pollIntervalMs: number;
  /** The newest cursor known to exist. */
  private head = 0;
  private readonly waiters = new Set<() => void>();
  private poller: NodeJS.Timeout | undefined;
  private polling = false;

  constructor(store: ObjectStore, options: EventLogOptions = {}) {
    this.store = store;
    this.pollIntervalMs = options.pollIntervalMs ?? 500;
  }

  /** Looks for events newer than the newest known; returns the newest cursor. */
  async refreshHead(): Promise<number> {
    let head = this.head;
    for await (const info of this.store.list(EVENTS_PREFIX, { startAfter: head > 0 ? eventKey(head) : undefined })) {
      const cursor = cursorOfKey(info.key);
      if (cursor !== undefined && cursor > head) head = cursor;
    }
    if (head > this.head) {
      this.head = head;
      this.wake();
    }
    return this.head;
  }

  /** Records an event at the next free cursor and wakes this process's watchers. */
  async append(payload: EventPayload): Promise<RegistryEvent> {
    let cursor = (await this.refreshHead()) + 1;
    for (;;) {
      const event: RegistryEvent = { cursor, recordedAtUnixMs: Date.now(), ...payload };
      try {
        await this.store.put(eventKey(cursor), Buffer.from(JSON.stringify(event)), { ifNoneMatch: true });
      } catch (error) {
        if (!(error instanceof PreconditionFailedError)) throw error;
        // Taken by another writer, so it exists: the next number is the candidate.
        cursor = Math.max(cursor + 1, (await this.refreshHead()) + 1);
        continue;
      }
      if (cursor > this.head) this.head = cursor;
      this.wake();
      return event;
    }
  }

  /** Events after `cursor`, in order, at most `limit`; stops early at a gap (none should exist). */
  async readAfter(cursor: number, limit = 500): Promise<RegistryEvent[]> {
    const events: RegistryEvent[] = [];
    let expected = cursor + 1;
    for await (const info of this.store.list(EVENTS_PREFIX, { startAfter: cursor > 0 ? eventKey(cursor) : undefined })) {
      const found = cursorOfKey(info.key);
      if (found === undefined) continue;
      if (found !== expected) break;
      const stored = await this.store.get(info.key);
      if (!stored) break;
      events.push(JSON.parse(Buffer.from(stored.body).toString('utf8')) as RegistryEvent);
      expected += 1;
      if (events.length >= limit) break;
    }
    if (events.length > 0 && events.at(-1)!.cursor > this.head) this.head = events.at(-1)!.cursor;
    return events;
  }

  /**
   * Resolves once an event after `cursor` may exist (an append here, or one found by polling), or
   * when `signal` aborts.
   */
  waitForChange(cursor: number, signal: AbortSignal): Promise<void> {
    if (this.head > cursor || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener('abort', done);
        if (this.waiters.size === 0) this.stopPolling();
        resolve();
      };
      this.waiters.add(done);
      signal.addEventListener('abort', done, { once: true });
      this.startPolling();
    });
  }

  /**
   * Every event after `from`, then a caught-up marker, then each new event as it is recorded,
   * until `signal` aborts. A cursor past the newest event means the watcher followed another log
   * (a replaced or restored store): continuing would silently skip events, so it fails
   * OUT_OF_RANGE and the watcher must read the state again and watch from 'now'.
   */
  async *follow(from: WatchCursor, signal: AbortSignal): AsyncGenerator<WatchItem> {
    const head = await this.refreshHead();
    if (from !== 'now' && from > head) {
      throw new NexusError(ErrorCode.OUT_OF_RANGE, `after_cursor ${from} is past the newest event (${head}); read the state again and watch with from_now`);
    }
    let cursor = from === 'now' ? head : from;
    const drain = async function* (log: EventLog): AsyncGenerator<WatchItem> {
      for (;;) {
        const events = await log.readAfter(cursor);
        if (events.length === 0) return;
        for (const event of events) {
          if (signal.aborted) return;
          cursor = event.cursor;
          yield { kind: 'event', event };
        }
      }
    };
    yield* drain(this);
    if (signal.aborted) return;
    yield { kind: 'caught-up', cursor, recordedAtUnixMs: Date.now() };
    while (!signal.aborted) {
      await this.waitForChange(cursor, signal);
      yield* drain(this);
    }
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private startPolling(): void {
    if (this.poller) return;
    this.poller = setInterval(() => {
      if (this.polling) return;
      this.polling = true;
      this.refreshHead().catch(() => undefined).finally(() => (this.polling = false));
    }, this.pollIntervalMs);
    this.poller.unref();
  }

  private stopPolling(): void {
    clearInterval(this.poller);
    this.poller = undefined;
  }

  /** Wakes every waiter and stops polling (on shutdown). */
  close(): void {
    this.wake();
    this.stopPolling();
  }
}
