/**
 * The router's copy of the registry's API keys: one long-lived nexus.auth.v1.Keys/WatchKeys
 * stream into a KeyDirectory. The first message of each stream is a snapshot of every key (it
 * replaces the directory's), later ones are single changes (a new key, a revocation). A stream
 * that breaks is reopened with backoff, as the model Watch is (registry-watch.ts), and its
 * snapshot replaces whatever changed meanwhile; until the first snapshot arrives the directory
 * is not ready and key-bearing calls are answered UNAVAILABLE.
 */
import type { ServiceError } from '@grpc/grpc-js';
import type { KeyDirectory } from '../../auth/key-directory.ts';
import type { WatchKeysRequest, WatchKeysResponse } from '../../protocol/generated/nexus/auth/v1/keys.ts';
import type { Logger } from '../../telemetry/logger.ts';

/** The part of a grpc-js server stream this uses, so tests can stand in for the registry. */
export interface KeyWatchStream {
  on(event: 'data', listener: (message: WatchKeysResponse) => void): unknown;
  on(event: 'error', listener: (error: ServiceError) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  cancel(): void;
}

export interface KeySource {
  watchKeys(request: WatchKeysRequest): KeyWatchStream;
}

export interface KeyFollowerOptions {
  logger: Logger;
  /** First reconnect delay, doubled per failed attempt up to `maxBackoffMs`. Default 100. */
  minBackoffMs?: number;
  /** Default 5000. */
  maxBackoffMs?: number;
  random?: () => number;
}

export class KeyFollower {
  private readonly source: KeySource;
  private readonly directory: KeyDirectory;
  private readonly options: KeyFollowerOptions;
  private stream: KeyWatchStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private closed = false;

  constructor(source: KeySource, directory: KeyDirectory, options: KeyFollowerOptions) {
    this.source = source;
    this.directory = directory;
    this.options = options;
  }

  start(): void {
    this.connect();
  }

  private connect(): void {
    if (this.closed) return;
    const stream = this.source.watchKeys({});
    this.stream = stream;
    let ended = false;
    const lost = (error?: ServiceError) => {
      if (ended) return;
      ended = true;
      if (this.stream === stream) this.stream = undefined;
      if (this.closed) return;
      const delay = Math.min(this.options.maxBackoffMs ?? 5000, (this.options.minBackoffMs ?? 100) * 2 ** this.failures)
        * (0.8 + 0.4 * (this.options.random ?? Math.random)());
      this.failures += 1;
      this.options.logger.warn({ retry_ms: Math.round(delay), reason: error?.details ?? 'stream ended', keys_ready: this.directory.ready },
        "registry's key stream lost; reconnecting");
      this.timer = setTimeout(() => this.connect(), delay);
      this.timer.unref();
    };
    stream.on('data', (message: WatchKeysResponse) => {
      if (ended) return;
      if (message.snapshot) {
        this.directory.replace(message.keys);
        this.failures = 0;
        this.options.logger.info({ keys: this.directory.size }, "registry's keys received");
        return;
      }
      for (const verifier of message.keys) this.directory.apply(verifier);
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
