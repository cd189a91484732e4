/** The router config's `auth.default_limits`: each limit by its snake_case name, every bad value named. */
import { describe, expect, it } from 'vitest';
import { UNLIMITED } from '../../services/auth/principal.ts';
import { parseRouterConfig } from '../../services/router/config/router-config.ts';

describe('auth.default_limits', () => {
  it('reads every limit, fractional rates included; the ones left out stay unlimited', () => {
    const config = parseRouterConfig('auth:\n  default_limits:\n    requests_per_second: 2.5\n    burst: 10\n    rows_per_second: 1000\n    daily_quota: 50000');
    expect(config.auth?.defaultLimits).toEqual({ requestsPerSecond: 2.5, burst: 10, rowsPerSecond: 1000, dailyQuota: 50_000, maxConcurrent: 0 });
    expect(parseRouterConfig('auth:\n  default_limits:\n    max_concurrent: 4').auth?.defaultLimits).toEqual({ ...UNLIMITED, maxConcurrent: 4 });
  });

  it('is unlimited when the section or its limits are absent', () => {
    expect(parseRouterConfig('').auth).toBeUndefined();
    expect(parseRouterConfig('auth: {}').auth?.defaultLimits).toEqual(UNLIMITED);
  });

  it.each([
    ['auth: 3', /'auth' must be a mapping/],
    ['auth:\n  limits: {}', /auth.limits is not a setting; known: default_limits/],
    ['auth:\n  default_limits: [1]', /auth.default_limits must be a mapping/],
    ['auth:\n  default_limits:\n    calls_per_minute: 5', /auth.default_limits.calls_per_minute is not a limit; known: requests_per_second, burst/],
    ['auth:\n  default_limits:\n    requests_per_second: -1', /auth.default_limits.requests_per_second must be a non-negative number \(0: unlimited\), got -1/],
    ['auth:\n  default_limits:\n    burst: 1.5', /auth.default_limits.burst must be a non-negative integer \(0: the rate, rounded up\), got 1.5/],
    ['auth:\n  default_limits:\n    daily_quota: "lots"', /auth.default_limits.daily_quota must be a non-negative integer/],
  ])('refuses %j', (text, message) => {
    expect(() => parseRouterConfig(text)).toThrow(message);
  });
});
