/**
 * The per-principal limiter on its own: bursts, rows per second, the UTC-day quota, calls in
 * flight, defaults, independence of principals, and the memory it keeps. Windows run on fake
 * timers (rate-limiter-flexible reads Date.now and sets timers); the UTC day on an injected clock.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ANONYMOUS, UNLIMITED, type Principal, type PrincipalLimits } from '../../services/auth/principal.ts';
import {
  burstWindowOf, msUntilUtcMidnight, PrincipalLimiter, rowsOf, utcDayOf, windowOf, type LimitName,
} from '../../services/auth/rate-limits.ts';
import { ErrorCode, NexusError } from '../../services/domain/index.ts';

const keyPrincipal = (id: string, limits: Partial<PrincipalLimits>): Principal => ({
  kind: 'key', id: `key:${id}`, role: 'infer', models: [], limits: { ...UNLIMITED, ...limits },
});
const SERVICE: Principal = { kind: 'service', id: 'service:router', service: 'router' };

/** The refusal `attempt` rejects with; fails the test when it resolves. */
async function refusalOf(attempt: Promise<unknown>): Promise<NexusError> {
  try {
    await attempt;
  } catch (error) {
    expect(error).toBeInstanceOf(NexusError);
    return error as NexusError;
  }
  throw new Error('the call was admitted; a refusal was expected');
}

/** How many of `count` admissions in a row pass (each released at once). */
async function admittedOf(limiter: PrincipalLimiter, principal: Principal, count: number, rows = 1): Promise<number> {
  let admitted = 0;
  for (let index = 0; index < count; index += 1) {
    try {
      (await limiter.admit(principal, rows)).release();
      admitted += 1;
    } catch (error) {
      if ((error as NexusError).code !== ErrorCode.RESOURCE_EXHAUSTED) throw error;
    }
  }
  return admitted;
}

describe('windows and days (pure)', () => {
  it('holds a fractional rate exactly with whole points', () => {
    expect(windowOf(5)).toEqual({ points: 5, durationSeconds: 1 });
    expect(windowOf(2.5)).toEqual({ points: 3, durationSeconds: 1.2 });
    expect(windowOf(0.5)).toEqual({ points: 1, durationSeconds: 2 });
  });

  it('sizes the burst pool from the rate when none is given, refilled over ten times the time the rate spends it', () => {
    expect(burstWindowOf(5, 0)).toEqual({ points: 5, durationSeconds: 10 });
    expect(burstWindowOf(10, 40)).toEqual({ points: 40, durationSeconds: 40 });
    expect(burstWindowOf(1000, 1)).toEqual({ points: 1, durationSeconds: 1 });
  });

  it('reads the UTC day and the time to its end', () => {
    const lateEvening = Date.parse('2026-03-01T23:59:58.500Z');
    expect(utcDayOf(lateEvening)).toBe('2026-03-01');
    expect(msUntilUtcMidnight(lateEvening)).toBe(1500);
    expect(msUntilUtcMidnight(Date.parse('2026-03-02T00:00:00.000Z'))).toBe(86_400_000);
  });

  it('counts a call as its first dimension, at least one row', () => {
    expect(rowsOf(32)).toBe(32);
    expect(rowsOf(undefined)).toBe(1);
    expect(rowsOf(0)).toBe(1);
    expect(rowsOf(-1)).toBe(1);
    expect(rowsOf(Number.NaN)).toBe(1);
  });
});

describe('PrincipalLimiter', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: Date.parse('2026-03-01T12:00:00.000Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('never limits services, anonymous callers, or principals with no limit anywhere; their path allocates nothing', async () => {
    const strict: PrincipalLimits = { requestsPerSecond: 1, burst: 1, rowsPerSecond: 1, dailyQuota: 1, maxConcurrent: 1 };
    const limiter = new PrincipalLimiter({ defaults: strict });
    for (const principal of [SERVICE, ANONYMOUS]) {
      expect(limiter.limitsOf(principal)).toBeUndefined();
      expect(await admittedOf(limiter, principal, 50, 1_000)).toBe(50);
    }
    const free = new PrincipalLimiter();
    const unlimitedKey = keyPrincipal('000000000000', {});
    expect(free.limitsOf(unlimitedKey)).toBeUndefined();
    // The same settled promise every time, and the work's own promise handed straight back.
    expect(free.admit(unlimitedKey, 1)).toBe(free.admit(ANONYMOUS, 1));
    const answer = Promise.resolve('answer');
    expect(free.within(unlimitedKey, 1, (request: string) => (request === 'request' ? answer : Promise.reject()), 'request', undefined)).toBe(answer);
  });

  it('lets a burst through above the rate, then refuses with the wait until the window resets', async () => {
    const limiter = new PrincipalLimiter();
    const principal = keyPrincipal('aaaaaaaaaaaa', { requestsPerSecond: 5, burst: 5 });
    expect(await admittedOf(limiter, principal, 10)).toBe(10); // 5 sustained + 5 from the burst pool
    vi.advanceTimersByTime(300);
    const refusal = await refusalOf(limiter.admit(principal, 1));
    expect(refusal.code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
    expect(refusal.message).toBe('rate limit of key:aaaaaaaaaaaa: requests_per_second (5, burst 5); retry in 0.7 s');
    expect(refusal.retryAfterMs).toBe(700);
    // The refused call cost nothing: once the advised wait is over, a call goes through.
    vi.advanceTimersByTime(refusal.retryAfterMs!);
    expect(await admittedOf(limiter, principal, 6)).toBe(5); // a new sustained window; the burst pool is spent for 10 s
  });

  it('holds the sustained rate once the burst is spent', async () => {
    const limiter = new PrincipalLimiter();
    const principal = keyPrincipal('aaaaaaaaaaaa', { requestsPerSecond: 4 });
    let admitted = 0;
    for (let second = 0; second < 10; second += 1) {
      admitted += await admittedOf(limiter, principal, 20);
      vi.advanceTimersByTime(1000);
    }
    // 10 s at 4/s, and the burst pool (the rate, rounded up) once.
    expect(admitted).toBe(40 + 4);
  });

  it('counts rows per second, gives a refused call its rows back, and refuses a call no window can hold without advising a retry', async () => {
    const limiter = new PrincipalLimiter();
    const principal = keyPrincipal('bbbbbbbbbbbb', { rowsPerSecond: 10 });
    await limiter.admit(principal, 6);
    const refusal = await refusalOf(limiter.admit(principal, 5));
    expect(refusal.message).toMatch(/^rate limit of key:bbbbbbbbbbbb: rows_per_second \(10\); retry in 1 s$/);
    expect(refusal.retryAfterMs).toBe(1000);
    await limiter.admit(principal, 4); // 6 + 4: the refused 5 were not kept
    await refusalOf(limiter.admit(principal, 1));
    vi.advanceTimersByTime(1000);
    const oversized = await refusalOf(limiter.admit(principal, 11));
    expect(oversized.code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
    expect(oversized.message).toMatch(/a call of 11 rows is over it; send at most 10 rows per call/);
    expect(oversized.retryAfterMs).toBeUndefined();
    await limiter.admit(principal, 10);
  });

  it('gives a call refused by a later limit back to the earlier ones', async () => {
    const limiter = new PrincipalLimiter();
    const rates = { requestsPerSecond: 2, burst: 1 };
    await limiter.admit(keyPrincipal('cccccccccccc', { ...rates, dailyQuota: 1 }), 1);
    // Passes the request rate, then the daily quota refuses it: its request is given back.
    await refusalOf(limiter.admit(keyPrincipal('cccccccccccc', { ...rates, dailyQuota: 1 }), 1));
    // The same principal without the quota reads the same request counters: one sustained, one burst left.
    expect(await admittedOf(limiter, keyPrincipal('cccccccccccc', rates), 5)).toBe(2);
  });

  it('resets the daily quota at UTC midnight', async () => {
    let now = Date.parse('2026-03-01T23:59:58.000Z');
    const limiter = new PrincipalLimiter({ now: () => now });
    const principal = keyPrincipal('dddddddddddd', { dailyQuota: 2 });
    expect(await admittedOf(limiter, principal, 2)).toBe(2);
    const refusal = await refusalOf(limiter.admit(principal, 1));
    expect(refusal.message).toBe('rate limit of key:dddddddddddd: daily_quota (2 per UTC day); retry in 2 s');
    expect(refusal.retryAfterMs).toBe(2000);
    now = Date.parse('2026-03-02T00:00:01.000Z');
    expect(await admittedOf(limiter, principal, 3)).toBe(2);
    expect((await refusalOf(limiter.admit(principal, 1))).retryAfterMs).toBe(86_399_000);
  });

  it('bounds calls in flight, releases a refused or failed call, and forgets a principal with none in flight', async () => {
    const refusedBy: LimitName[] = [];
    const limiter = new PrincipalLimiter({ onRefused: (_, limit) => refusedBy.push(limit) });
    const principal = keyPrincipal('eeeeeeeeeeee', { maxConcurrent: 2, requestsPerSecond: 3, burst: 1 });
    const first = await limiter.admit(principal, 1);
    const second = await limiter.admit(principal, 1);
    const refusal = await refusalOf(limiter.admit(principal, 1));
    expect(refusal.message).toBe('rate limit of key:eeeeeeeeeeee: max_concurrent (2); retry in 0.1 s');
    expect(limiter.inFlightOf(principal.id)).toBe(2);
    first.release();
    first.release(); // idempotent
    expect(limiter.inFlightOf(principal.id)).toBe(1);
    const third = await limiter.admit(principal, 1); // the rate's 3rd
    second.release();
    third.release();
    const fourth = await limiter.admit(principal, 1); // from the burst pool
    // A call refused by another limit gives its place back.
    await refusalOf(limiter.admit(principal, 1)); // requests_per_second
    expect(limiter.inFlightOf(principal.id)).toBe(1);
    fourth.release();
    expect(limiter.inFlightOf(principal.id)).toBe(0);
    // Work that fails releases its place too.
    vi.advanceTimersByTime(1000);
    const failing = limiter.within(principal, 1, async () => { throw new NexusError(ErrorCode.INTERNAL, 'boom'); }, undefined, undefined);
    await expect(failing).rejects.toThrow('boom');
    expect(limiter.inFlightOf(principal.id)).toBe(0);
    expect((limiter as unknown as { inFlight: Map<string, number> }).inFlight.size).toBe(0);
    expect(refusedBy).toEqual(['max_concurrent', 'requests_per_second']);
  });

  it('takes each limit a principal leaves at zero from the defaults', async () => {
    const limiter = new PrincipalLimiter({ defaults: { ...UNLIMITED, maxConcurrent: 1, requestsPerSecond: 100 } });
    const byDefault = keyPrincipal('ffffffffffff', {});
    const own = keyPrincipal('111111111111', { maxConcurrent: 3 });
    expect(limiter.limitsOf(own)).toEqual({ ...UNLIMITED, maxConcurrent: 3, requestsPerSecond: 100 });
    await limiter.admit(byDefault, 1);
    expect((await refusalOf(limiter.admit(byDefault, 1))).message).toMatch(/max_concurrent \(1\)/);
    await Promise.all([limiter.admit(own, 1), limiter.admit(own, 1), limiter.admit(own, 1)]);
    await refusalOf(limiter.admit(own, 1));
  });

  it('keeps each principal to its own counters: one at its limit never refuses another', async () => {
    const limiter = new PrincipalLimiter();
    const limits = { requestsPerSecond: 1, burst: 1, maxConcurrent: 1, dailyQuota: 2 };
    const busy = keyPrincipal('222222222222', limits);
    const other = keyPrincipal('333333333333', limits);
    await limiter.admit(busy, 1); // held: busy is at its concurrency limit
    await refusalOf(limiter.admit(busy, 1));
    const held = await limiter.admit(other, 1);
    held.release();
    expect(await admittedOf(limiter, other, 1)).toBe(1);
  });

  it('keeps no counter once its window has passed', async () => {
    const limiter = new PrincipalLimiter();
    for (let index = 0; index < 100; index += 1) {
      await limiter.admit(keyPrincipal(index.toString(16).padStart(12, '0'), { requestsPerSecond: 1, rowsPerSecond: 10 }), 1);
    }
    const limiters = (limiter as unknown as { limiters: Map<string, { dump(): { storage: unknown[] } }> }).limiters;
    const held = () => [...limiters.values()].reduce((sum, each) => sum + each.dump().storage.length, 0);
    expect(held()).toBe(200); // a request window and a rows window each
    vi.advanceTimersByTime(1000);
    expect(held()).toBe(0);
  });
});
