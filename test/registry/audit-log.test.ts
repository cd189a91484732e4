/**
 * The audit log over a real local store: one object per record, listed newest first, a page
 * bounded by its limit (plus the records sharing its last millisecond), the next page from a
 * before-cursor with nothing skipped or repeated, and bad page requests refused by name.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ErrorCode } from '../../services/domain/index.ts';
import { AuditLog } from '../../services/registry/core/index.ts';
import { LocalObjectStore } from '../../services/registry/store/index.ts';

let work: string;

const entry = (action: string, target = 'iris@production') => ({ principal: 'key:0123456789ab', action, target, outcome: 'OK', detail: '' });

async function freshLog(): Promise<{ log: AuditLog; dir: string }> {
  const dir = await mkdtemp(join(work, 'store-'));
  return { log: new AuditLog(await new LocalObjectStore(dir).init()), dir };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nexus-audit-'));
});

afterEach(() => {
  vi.useRealTimers();
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('audit log', () => {
  it('keeps one object per record under audit/, and lists them newest first', async () => {
    const { log, dir } = await freshLog();
    vi.useFakeTimers({ toFake: ['Date'] });
    for (let index = 0; index < 5; index++) {
      vi.setSystemTime(1_700_000_000_000 + index * 1000);
      await log.append(entry(`Action${index}`));
    }
    const files = await readdir(join(dir, 'audit'));
    expect(files).toHaveLength(5);
    expect(files.every((file) => /^\d{13}-[0-9a-f]{16}\.json$/.test(file))).toBe(true);
    const records = await log.list({ limit: 0, beforeUnixMs: 0 });
    expect(records.map((record) => record.action)).toEqual(['Action4', 'Action3', 'Action2', 'Action1', 'Action0']);
    expect(records[0]).toEqual({ ...entry('Action4'), timeUnixMs: 1_700_000_004_000 });
  });

  it('pages by the last record\'s time without skipping or repeating one, records of one millisecond together', async () => {
    const { log } = await freshLog();
    vi.useFakeTimers({ toFake: ['Date'] });
    // Times 1..4 s, with three records in the second 2.
    const times = [1000, 2000, 2000, 2000, 3000, 4000];
    for (const [index, time] of times.entries()) {
      vi.setSystemTime(1_700_000_000_000 + time);
      await log.append(entry(`Action${index}`));
    }
    const first = await log.list({ limit: 3, beforeUnixMs: 0 });
    // 4 s, 3 s, then every record of 2 s although the limit is 3.
    expect(first.map((record) => record.timeUnixMs - 1_700_000_000_000)).toEqual([4000, 3000, 2000, 2000, 2000]);
    const second = await log.list({ limit: 3, beforeUnixMs: first.at(-1)!.timeUnixMs });
    expect(second.map((record) => record.action)).toEqual(['Action0']);
    const all = [...first, ...second].map((record) => record.action).sort();
    expect(all).toEqual(times.map((_, index) => `Action${index}`));
    expect(await log.list({ limit: 3, beforeUnixMs: second.at(-1)!.timeUnixMs })).toEqual([]);
  });

  it('cuts long targets and details, so a record stays small whatever a request held', async () => {
    const { log } = await freshLog();
    const record = await log.append({ ...entry('SetAlias', 'x'.repeat(10_000)), detail: 'y'.repeat(10_000) });
    expect(record.target.length).toBeLessThanOrEqual(256);
    expect(record.detail.length).toBeLessThanOrEqual(2048);
    expect((await log.list({ limit: 1, beforeUnixMs: 0 }))[0]).toEqual(record);
  });

  it('refuses a page over 1000 records and a negative time, naming the field', async () => {
    const { log } = await freshLog();
    await expect(log.list({ limit: 1001, beforeUnixMs: 0 })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining('limit 1001') });
    await expect(log.list({ limit: 1, beforeUnixMs: -5 })).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining('before_unix_ms') });
  });
});
