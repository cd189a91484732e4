/**
 * The router's one long-lived Watch stream on the registry. It remembers the cursor of the last
 * event it applied; a stream that breaks (registry restart, network, the registry closing its
 * watchers) is reopened with backoff from that cursor, so every later event arrives, and an event
 * at or before the cursor (a resend) is dropped: none is missed, none applied twice.
 *
 * The first connection starts from now, and one whose cursor the registry refuses (OUT_OF_RANGE:
 * the store was replaced) starts from now again; in both cases nothing guarantees the router's
 * earlier reads and the stream join up, so once the stream has caught up `onResync` re-reads the
 * state of every model the router follows.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import { WatchRequest, type WatchResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import type { Logger } from '../../telemetry/logger.ts';

/** The part of a grpc-js server stream this uses, so tests can stand in for the registry. */
export interface WatchStream {
  on(event: 'data', listener: (message: WatchResponse) => void): unknown;
  on(event: 'error', listener: (error: ServiceError) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  cancel(): void;
}

export interface WatchSource {
  watch(request: WatchRequest): WatchStream;
}

export interface RegistryWatcherOptions {
  /** Told every new event, in cursor order, once. */
  onEvent: (event: WatchResponse) => void;
  /** Called when the stream cannot vouch for continuity with what was read before it. */
  onResync: () => void | Promise<void>;
  logger: Logger;
  /** First reconnect delay, doubled per failed attempt up to `maxBackoffMs`. Default 100. */
  minBackoffMs?: number;
  /** Default 5000. */
  maxBackoffMs?: number;
  random?: () => number;
}

export class RegistryWatcher {
  private readonly source: WatchSource;
  private readonly options: RegistryWatcherOptions;
  /** Cursor of the last event applied; undefined until a stream has caught up once. */
  private lastCursor: number | undefined;
  private needsResync = true;
  private stream: WatchStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;
  private caughtUp = false;
  private readonly caughtUpListeners = new Set<() => void>();

  constructor(source: WatchSource, options: RegistryWatcherOptions) {
    this.source = source;
    this.options = options;
  }

  get cursor(): number | undefined {
    return this.lastCursor;
  }

  /** True while a stream is open and has replayed its backlog. */
  get live(): boolean {
    return this.caughtUp;
  }

  start(): void {
    this.connect();
  }

  /** Resolves the next time a stream catches up (at once if one is live now). */
  whenLive(): Promise<void> {
    if (this.caughtUp) return Promise.resolve();
    return new Promise((resolve) => this.caughtUpListeners.add(resolve));
  }

  private connect(): void {
    if (this.closed) return;
    const request = WatchRequest.fromPartial(this.lastCursor === undefined ? { fromNow: true } : { afterCursor: this.lastCursor });
    const stream = this.source.watch(request);
    this.stream = stream;
    let ended = false;
    const lost = (error?: ServiceError) => {
      if (ended) return;
      ended = true;
      if (this.stream === stream) this.stream = undefined;
      this.caughtUp = false;
      if (this.closed) return;
      if (error?.code === status.OUT_OF_RANGE) {
        // The registry's log is not the one our cursor came from: start over and re-read.
        this.lastCursor = undefined;
        this.needsResync = true;
      }
      const delay = Math.min(this.options.maxBackoffMs ?? 5000, (this.options.minBackoffMs ?? 100) * 2 ** this.failures)
        * (0.8 + 0.4 * (this.options.random ?? Math.random)());
      this.failures += 1;
      this.options.logger.warn({ cursor: this.lastCursor, retry_ms: Math.round(delay), reason: error?.details ?? 'stream ended' },
        'registry watch lost; reconnecting');
      this.timer = setTimeout(() => this.connect(), delay);
      this.timer.unref();
    };
    stream.on('data', (message: WatchResponse) => {
      if (ended) return;
      if (message.caughtUp) {
        if (this.lastCursor === undefined || message.caughtUp.cursor > this.lastCursor) this.lastCursor = message.caughtUp.cursor;
        this.caughtUp = true;
        this.failures = 0;
        for (const listener of this.caughtUpListeners) listener();
        this.caughtUpListeners.clear();
        if (this.needsResync) {
          this.needsResync = false;
          Promise.resolve(this.options.onResync()).catch((error: unknown) => {
            this.options.logger.warn({ err: error }, 'registry re-sync failed');
          });
        }
        return;
      }
      // A resent event (at or before the last one applied) was applied already.
      if (this.lastCursor !== undefined && message.cursor <= this.lastCursor) return;
      this.lastCursor = message.cursor;
      try {
        this.options.onEvent(message);
      } catch (error) {
        this.options.logger.error({ err: error, cursor: message.cursor }, 'applying a registry event failed');
      }
    });
    stream.on('error', (error: ServiceError) => lost(error));
    stream.on('end', () => lost());
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.stream?.cancel();
    this.stream = undefined;
  }
}
