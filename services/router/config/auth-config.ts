/**
 * The router config's `auth` section:
 *
 *   auth:
 *     default_limits:              # for every key or JWT that leaves a limit at 0; 0 or absent: unlimited
 *       requests_per_second: 20    # calls per second, sustained (may be fractional)
 *       burst: 40                  # calls allowed at once above the rate; 0: the rate, rounded up
 *       rows_per_second: 2000      # rows (dimension 0 of the first input) per second
 *       daily_quota: 100000        # calls per UTC day
 *       max_concurrent: 16         # calls in flight at once
 */
import { UNLIMITED, type PrincipalLimits } from '../../auth/principal.ts';

export interface AuthConfig {
  /** Limits for principals whose own (key record or JWT claim) leave them at 0. Default: unlimited. */
  defaultLimits: PrincipalLimits;
}

/** Each limit by its name in `auth.default_limits`, whether it may be fractional, and what 0 means. */
const LIMIT_KEYS: Readonly<Record<string, { field: keyof PrincipalLimits; fractional: boolean; zero: string }>> = {
  requests_per_second: { field: 'requestsPerSecond', fractional: true, zero: 'unlimited' },
  burst: { field: 'burst', fractional: false, zero: 'the rate, rounded up' },
  rows_per_second: { field: 'rowsPerSecond', fractional: true, zero: 'unlimited' },
  daily_quota: { field: 'dailyQuota', fractional: false, zero: 'unlimited' },
  max_concurrent: { field: 'maxConcurrent', fractional: false, zero: 'unlimited' },
};

function limitValue(value: unknown, where: string, { fractional, zero }: { fractional: boolean; zero: string }): number {
  const valid = typeof value === 'number' && Number.isFinite(value) && value >= 0 && (fractional || Number.isInteger(value));
  if (!valid) throw new Error(`${where} must be a non-negative ${fractional ? 'number' : 'integer'} (0: ${zero}), got ${JSON.stringify(value)}`);
  return value;
}

/** Reads the `auth` section; throws naming the bad key. */
export function parseAuthConfig(raw: unknown): AuthConfig {
  if (raw === null || raw === undefined) return { defaultLimits: UNLIMITED };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new Error("'auth' must be a mapping");
  const section = raw as Record<string, unknown>;
  const unknown = Object.keys(section).filter((key) => key !== 'default_limits');
  if (unknown.length > 0) throw new Error(`auth.${unknown[0]} is not a setting; known: default_limits`);
  const limits = section.default_limits;
  if (limits === null || limits === undefined) return { defaultLimits: UNLIMITED };
  if (typeof limits !== 'object' || Array.isArray(limits)) throw new Error('auth.default_limits must be a mapping');
  const defaultLimits: PrincipalLimits = { ...UNLIMITED };
  for (const [key, value] of Object.entries(limits)) {
    if (!Object.hasOwn(LIMIT_KEYS, key)) throw new Error(`auth.default_limits.${key} is not a limit; known: ${Object.keys(LIMIT_KEYS).join(', ')}`);
    defaultLimits[LIMIT_KEYS[key].field] = limitValue(value, `auth.default_limits.${key}`, LIMIT_KEYS[key]);
  }
  return { defaultLimits };
}
