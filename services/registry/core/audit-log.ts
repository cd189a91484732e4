/**
 * The audit log: one object per record, created once and never rewritten, in the registry's store.
 *
 *   audit/<13 digits: 9999999999999 - time in ms>-<16 random hex>.json
 *
 * The time is stored inverted so that the store's ascending listing is newest first: the latest
 * page is read without walking the whole log, and a page before a time starts right after that
 * time's keys. The random part keeps two registry processes (or two calls in one millisecond)
 * from ever writing the same key.
 */
import { randomBytes } from 'node:crypto';
import { AuditRecord } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { invalidArgument } from '../../domain/index.ts';
import type { ObjectStore } from '../store/index.ts';

const AUDIT_PREFIX = 'audit/';
/** The largest 13-digit time, in ms (the year 2286): times are inverted against it. */
const LATEST_TIME_MS = 9_999_999_999_999;
const RECORD_KEY = /^audit\/(\d{13})-[0-9a-f]{16}\.json$/;
/** Records per page when a request asks for 0. */
export const DEFAULT_AUDIT_PAGE = 100;
/** Most records one page may ask for. */
export const MAX_AUDIT_PAGE = 1000;
/** Longest target and detail kept, in characters: a record stays small whatever a request held. */
const MAX_TARGET_CHARS = 256;
const MAX_DETAIL_CHARS = 2048;

const invertedTime = (timeMs: number) => String(LATEST_TIME_MS - timeMs).padStart(13, '0');

/** The time a record key was written at; undefined for a key that is no record. */
function timeOfKey(key: string): number | undefined {
  const match = RECORD_KEY.exec(key);
  return match ? LATEST_TIME_MS - Number(match[1]) : undefined;
}

export class AuditLog {
  private readonly store: ObjectStore;

  constructor(store: ObjectStore) {
    this.store = store;
  }

  /** Appends a record, stamped now; target and detail are cut to a bounded length. */
  async append(entry: Omit<AuditRecord, 'timeUnixMs'>): Promise<AuditRecord> {
    const record: AuditRecord = {
      ...entry, timeUnixMs: Date.now(),
      target: entry.target.slice(0, MAX_TARGET_CHARS), detail: entry.detail.slice(0, MAX_DETAIL_CHARS),
    };
    const key = `${AUDIT_PREFIX}${invertedTime(record.timeUnixMs)}-${randomBytes(8).toString('hex')}.json`;
    await this.store.put(key, Buffer.from(JSON.stringify(AuditRecord.toJSON(record))), { ifNoneMatch: true });
    return record;
  }

  /**
   * Records newest first, older than `beforeUnixMs` when given (> 0), at most `limit` (0: the
   * default page) plus any that share the last one's millisecond, so paging by the last record's
   * time never skips one. INVALID_ARGUMENT for a limit over MAX_AUDIT_PAGE or a negative time.
   */
  async list(options: { limit: number; beforeUnixMs: number }): Promise<AuditRecord[]> {
    const { limit, beforeUnixMs } = options;
    if (!Number.isInteger(limit) || limit < 0 || limit > MAX_AUDIT_PAGE) {
      throw invalidArgument(`limit ${limit} is out of range: ask for 1 to ${MAX_AUDIT_PAGE} records (0: ${DEFAULT_AUDIT_PAGE})`);
    }
    if (!Number.isInteger(beforeUnixMs) || beforeUnixMs < 0 || beforeUnixMs > LATEST_TIME_MS) {
      throw invalidArgument(`before_unix_ms ${beforeUnixMs} is not a time in milliseconds since the epoch (0: from the newest)`);
    }
    const wanted = limit === 0 ? DEFAULT_AUDIT_PAGE : limit;
    // '.' sorts after '-', so this skips every key of `beforeUnixMs` itself and nothing older.
    const startAfter = beforeUnixMs > 0 ? `${AUDIT_PREFIX}${invertedTime(beforeUnixMs)}.` : undefined;
    const records: AuditRecord[] = [];
    let lastTime: number | undefined;
    for await (const info of this.store.list(AUDIT_PREFIX, { startAfter })) {
      const time = timeOfKey(info.key);
      if (time === undefined || (beforeUnixMs > 0 && time >= beforeUnixMs)) continue;
      if (records.length >= wanted && time !== lastTime) break;
      const stored = await this.store.get(info.key);
      if (!stored) continue;
      records.push(AuditRecord.fromJSON(JSON.parse(Buffer.from(stored.body).toString('utf8'))));
      lastTime = time;
    }
    return records;
  }
}
