/**
 * Per-principal rate limits and quotas, in memory, one set per router: calls per second with a
 * burst, rows per second, calls per UTC day and calls in flight at once. A refusal is
 * RESOURCE_EXHAUSTED saying which limit, its value and when to retry (`retryAfterMs`).
 *
 * Each principal's counters are its own (rate-limiter-flexible's fixed windows, keyed by the
 * principal id), so a principal at its limit never slows another: nothing queues, nothing is
 * shared but the maps. Memory stays bounded: a window's counter expires with the window, and a
 * principal's in-flight count is dropped when it returns to zero.
 *
 * Services and anonymous callers are never limited, nor is a principal whose own limits and the
 * router's defaults are all zero; for them `within` runs the work at once and allocates nothing.
 */
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { ErrorCode, NexusError } from '../domain/index.ts';
import { UNLIMITED, type Principal, type PrincipalLimits } from './principal.ts';

/** The limit a refusal names, as the config and the Prometheus label spell it. */
export type LimitName = 'requests_per_second' | 'rows_per_second' | 'daily_quota' | 'max_concurrent';

/** A call's place within its principal's limits; `release` (idempotent) when its answer is sent. */
export interface Admission {
  release(): void;
}

export interface PrincipalLimiterOptions {
  /** Limits for whatever a principal's own limits leave at zero (config `auth.default_limits`). Default: unlimited. */
  defaults?: PrincipalLimits;
  /** The clock that decides the UTC day, Unix milliseconds. Default Date.now. */
  now?: () => number;
  /** Told of every refusal, with the principal id (never a secret) and the limit that refused. */
  onRefused?: (principalId: string, limit: LimitName) => void;
}

/** A counting window: `points` per `durationSeconds`. */
interface Window {
  points: number;
  durationSeconds: number;
}

const DAY_MS = 86_400_000;
/**
 * How long a caller refused for calls in flight is told to wait, in milliseconds: nothing says
 * when a running call ends, and most inference calls end well within this.
 */
const CONCURRENCY_RETRY_MS = 100;
/**
 * The burst pool refills over ten times as long as the sustained rate takes to spend it, so
 * a principal that keeps bursting averages at most 10% over its rate.
 */
const BURST_REFILL_FACTOR = 10;
/** Distinct windows kept before idle ones are dropped (one limiter object per distinct limit value). */
const MAX_LIMITERS = 1_024;

const NOTHING_TO_RELEASE: Admission = Object.freeze({ release() {} });
/** The answer to every unlimited call, made once. */
const ADMITTED_AT_ONCE = Promise.resolve(NOTHING_TO_RELEASE);

/** Each limit the principal leaves at zero takes the default's value. Pure. */
export function effectiveLimits(own: PrincipalLimits, defaults: PrincipalLimits): PrincipalLimits {
  return {
    requestsPerSecond: own.requestsPerSecond || defaults.requestsPerSecond,
    burst: own.burst || defaults.burst,
    rowsPerSecond: own.rowsPerSecond || defaults.rowsPerSecond,
    dailyQuota: own.dailyQuota || defaults.dailyQuota,
    maxConcurrent: own.maxConcurrent || defaults.maxConcurrent,
  };
}

const limitsAnything = (limits: PrincipalLimits) =>
  limits.requestsPerSecond > 0 || limits.rowsPerSecond > 0 || limits.dailyQuota > 0 || limits.maxConcurrent > 0;

/**
 * The window that holds `perSecond` exactly with whole points: 2.5/s is 3 per 1.2 s, 0.5/s is
 * 1 per 2 s. Pure.
 */
export function windowOf(perSecond: number): Window {
  const points = Math.ceil(perSecond);
  return { points, durationSeconds: points / perSecond };
}

/** The burst pool: `burst` calls (0: the rate, rounded up), refilled over BURST_REFILL_FACTOR times what the rate needs to spend them. Pure. */
export function burstWindowOf(requestsPerSecond: number, burst: number): Window {
  const points = burst || Math.ceil(requestsPerSecond);
  return { points, durationSeconds: Math.max(1, (BURST_REFILL_FACTOR * points) / requestsPerSecond) };
}

/** The UTC day of `unixMs`, "YYYY-MM-DD". Pure. */
export const utcDayOf = (unixMs: number) => new Date(unixMs).toISOString().slice(0, 10);

/** Milliseconds from `unixMs` to the next UTC midnight (a full day at midnight itself). Pure. */
export const msUntilUtcMidnight = (unixMs: number) => DAY_MS - (((unixMs % DAY_MS) + DAY_MS) % DAY_MS);

/** Rows a call counts for: its first input's dimension 0, at least 1. Pure. */
export function rowsOf(firstDimension: number | undefined): number {
  return typeof firstDimension === 'number' && Number.isFinite(firstDimension) && firstDimension > 1 ? Math.floor(firstDimension) : 1;
}

/** "0.4", "3", "43200": seconds to one decimal, rounded up. Pure. */
const secondsText = (ms: number) => String(Math.ceil(ms / 100) / 10);

/** The refusal of a call by `limit`. Pure. */
export function rateLimited(principalId: string, limit: LimitName, value: string, retryAfterMs: number): NexusError {
  const retry = Math.max(1, Math.ceil(retryAfterMs));
  return new NexusError(ErrorCode.RESOURCE_EXHAUSTED, `rate limit of ${principalId}: ${limit} (${value}); retry in ${secondsText(retry)} s`, { retryAfterMs: retry });
}

/** How one consume went: spent, or refused with the wait until its window resets. */
type Spend = { spent: true } | { spent: false; msBeforeNext: number };
const SPENT: Spend = { spent: true };

/**
 * Takes `points` from `key`'s window; a refused take is given back at once, so a refused call
 * costs its principal nothing and the advised wait is the real one.
 */
async function spend(limiter: RateLimiterMemory, key: string, points: number, options?: { customDuration: number }): Promise<Spend> {
  try {
    await limiter.consume(key, points, options);
    return SPENT;
  } catch (refusal) {
    if (!(refusal instanceof RateLimiterRes)) throw refusal;
    await limiter.reward(key, points, options);
    return { spent: false, msBeforeNext: refusal.msBeforeNext };
  }
}

/** Points taken so far by one admission, given back if a later limit refuses it. */
type Taken = Array<{ limiter: RateLimiterMemory; key: string; points: number }>;

export class PrincipalLimiter {
  private readonly defaults: PrincipalLimits;
  private readonly defaultsLimitAnything: boolean;
  private readonly now: () => number;
  private readonly onRefused: (principalId: string, limit: LimitName) => void;
  /** One limiter per distinct window, by kind and window ("rate:5/1"); each keys its counters by principal. */
  private readonly limiters = new Map<string, RateLimiterMemory>();
  /** Calls in flight per principal id; absent is zero. */
  private readonly inFlight = new Map<string, number>();

  constructor(options: PrincipalLimiterOptions = {}) {
    this.defaults = options.defaults ?? UNLIMITED;
    this.defaultsLimitAnything = limitsAnything(this.defaults);
    this.now = options.now ?? Date.now;
    this.onRefused = options.onRefused ?? (() => {});
  }

  /** The limits `principal` is held to, or undefined when it is not limited at all. */
  limitsOf(principal: Principal): PrincipalLimits | undefined {
    if (principal.kind !== 'key' && principal.kind !== 'jwt') return undefined;
    if (!this.defaultsLimitAnything) return limitsAnything(principal.limits) ? principal.limits : undefined;
    return effectiveLimits(principal.limits, this.defaults);
  }

  /** Calls of `principalId` in flight now (for tests and introspection). */
  inFlightOf(principalId: string): number {
    return this.inFlight.get(principalId) ?? 0;
  }

  /**
   * Runs `work(request, context)` once the principal's limits admit a call of `rows` rows
   * (dimension 0 of its first input; absent: 1), and releases the call's place when it settles;
   * rejects RESOURCE_EXHAUSTED when a limit refuses it. An unlimited principal's work runs at
   * once, and nothing is allocated for it (hence the arguments passed apart, not in a closure).
   */
  within<Request, Context, T>(principal: Principal, rows: number | undefined, work: (request: Request, context: Context) => Promise<T>,
    request: Request, context: Context): Promise<T> {
    const limits = this.limitsOf(principal);
    if (!limits) return work(request, context);
    return this.admitWithin(principal.id, limits, rowsOf(rows)).then((admission) => work(request, context).finally(() => admission.release()));
  }

  /**
   * Admits one call of `rows` rows (dimension 0 of its first input) for `principal`, or rejects
   * RESOURCE_EXHAUSTED naming the limit, with `retryAfterMs`. The admission holds a place among
   * the principal's calls in flight until released.
   */
  admit(principal: Principal, rows: number | undefined): Promise<Admission> {
    const limits = this.limitsOf(principal);
    return limits ? this.admitWithin(principal.id, limits, rowsOf(rows)) : ADMITTED_AT_ONCE;
  }

  private async admitWithin(principalId: string, limits: PrincipalLimits, rows: number): Promise<Admission> {
    const releaseSlot = this.takeSlot(principalId, limits.maxConcurrent);
    try {
      await this.spendRates(principalId, limits, rows);
    } catch (error) {
      releaseSlot();
      throw error;
    }
    let released = false;
    return {
      release() {
        if (released) return;
        released = true;
        releaseSlot();
      },
    };
  }

  /** Takes a place among the principal's calls in flight (synchronously, so two calls cannot both take the last one). */
  private takeSlot(principalId: string, maxConcurrent: number): () => void {
    if (maxConcurrent <= 0) return () => {};
    const count = this.inFlight.get(principalId) ?? 0;
    if (count >= maxConcurrent) throw this.refuse(principalId, 'max_concurrent', String(maxConcurrent), CONCURRENCY_RETRY_MS);
    this.inFlight.set(principalId, count + 1);
    return () => {
      const left = (this.inFlight.get(principalId) ?? 1) - 1;
      if (left > 0) this.inFlight.set(principalId, left);
      else this.inFlight.delete(principalId);
    };
  }

  /** Spends one call and `rows` rows; the first limit that refuses gives back what the others took. */
  private async spendRates(principalId: string, limits: PrincipalLimits, rows: number): Promise<void> {
    const taken: Taken = [];
    try {
      if (limits.requestsPerSecond > 0) await this.spendRequest(principalId, limits, taken);
      if (limits.rowsPerSecond > 0) {
        const window = windowOf(limits.rowsPerSecond);
        if (rows > window.points) {
          // Waiting cannot help: no window ever holds this call, so no retry is advised.
          this.onRefused(principalId, 'rows_per_second');
          throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED, `rate limit of ${principalId}: rows_per_second (${limits.rowsPerSecond}); `
            + `a call of ${rows} rows is over it; send at most ${window.points} rows per call`);
        }
        const limiter = this.limiterFor('rows', window);
        const outcome = await spend(limiter, principalId, rows);
        if (!outcome.spent) throw this.refuse(principalId, 'rows_per_second', String(limits.rowsPerSecond), outcome.msBeforeNext);
        taken.push({ limiter, key: principalId, points: rows });
      }
      if (limits.dailyQuota > 0) {
        // Keyed by the day as well, so the quota is whole again at UTC midnight whatever the
        // window's own timer says; the window lives until then and is dropped with the day.
        const now = this.now();
        const untilMidnightMs = msUntilUtcMidnight(now);
        const limiter = this.limiterFor('day', { points: limits.dailyQuota, durationSeconds: DAY_MS / 1000 });
        const outcome = await spend(limiter, `${principalId}@${utcDayOf(now)}`, 1, { customDuration: untilMidnightMs / 1000 });
        if (!outcome.spent) throw this.refuse(principalId, 'daily_quota', `${limits.dailyQuota} per UTC day`, untilMidnightMs);
      }
    } catch (error) {
      for (const { limiter, key, points } of taken) await limiter.reward(key, points);
      throw error;
    }
  }

  /** One call from the sustained window, or else from the burst pool. */
  private async spendRequest(principalId: string, limits: PrincipalLimits, taken: Taken): Promise<void> {
    const sustained = this.limiterFor('rate', windowOf(limits.requestsPerSecond));
    const fromSustained = await spend(sustained, principalId, 1);
    if (fromSustained.spent) {
      taken.push({ limiter: sustained, key: principalId, points: 1 });
      return;
    }
    const burstWindow = burstWindowOf(limits.requestsPerSecond, limits.burst);
    const burst = this.limiterFor('burst', burstWindow);
    const fromBurst = await spend(burst, principalId, 1);
    if (fromBurst.spent) {
      taken.push({ limiter: burst, key: principalId, points: 1 });
      return;
    }
    // Either window's reset lets the next call through.
    throw this.refuse(principalId, 'requests_per_second', `${limits.requestsPerSecond}, burst ${burstWindow.points}`,
      Math.min(fromSustained.msBeforeNext, fromBurst.msBeforeNext));
  }

  private refuse(principalId: string, limit: LimitName, value: string, retryAfterMs: number): NexusError {
    this.onRefused(principalId, limit);
    return rateLimited(principalId, limit, value, retryAfterMs);
  }

  private limiterFor(kind: string, window: Window): RateLimiterMemory {
    const name = `${kind}:${window.points}/${window.durationSeconds}`;
    let limiter = this.limiters.get(name);
    if (!limiter) {
      if (this.limiters.size >= MAX_LIMITERS) this.dropIdleLimiters();
      limiter = new RateLimiterMemory({ keyPrefix: '', points: window.points, duration: window.durationSeconds });
      this.limiters.set(name, limiter);
    }
    return limiter;
  }

  /** Forgets limiters whose every window has expired (their limit values are no longer in use). */
  private dropIdleLimiters(): void {
    for (const [name, limiter] of this.limiters) {
      if (limiter.dump().storage.length === 0) this.limiters.delete(name);
    }
  }
}
