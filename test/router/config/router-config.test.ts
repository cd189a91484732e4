import { describe, expect, it } from 'vitest';
import { DEFAULT_SERVING_CONFIG, parseRouterConfig, servingConfigFor } from '../../../services/router/config/router-config.ts';

describe('router config', () => {
  const config = parseRouterConfig(`
defaults:
  max_batch_size: 16
  max_queue_delay_us: 500
  default_priority: low
models:
  iris:
    max_queue_size: 8
    preferred_batch_sizes: [4, 8]
    response_cache: { max_bytes: 1024, ttl_seconds: 30 }
`);

  it('layers built-in defaults, file defaults, the stored batching and the per-model block', () => {
    expect(servingConfigFor(config, 'other', undefined)).toEqual({
      ...DEFAULT_SERVING_CONFIG, maxBatchSize: 16, maxQueueDelayMs: 0.5, defaultPriority: 3,
    });
    const iris = servingConfigFor(config, 'iris', { maxBatchSize: 12, maxQueueDelayUs: 3000 });
    expect(iris).toEqual({
      ...DEFAULT_SERVING_CONFIG, maxBatchSize: 12, maxQueueDelayMs: 3, defaultPriority: 3, maxQueueSize: 8,
      preferredBatchSizes: [4, 8], responseCache: { maxBytes: 1024, ttlMs: 30_000 },
    });
  });

  it('reads wait_when_idle (Triton\'s delay even with nothing running)', () => {
    const triton = parseRouterConfig('defaults:\n  wait_when_idle: true');
    expect(servingConfigFor(triton, 'iris', undefined).waitWhenIdle).toBe(true);
    expect(servingConfigFor(config, 'iris', undefined).waitWhenIdle).toBeUndefined();
  });

  it.each([
    ['defaults:\n  max_batch_size: 0', /defaults.max_batch_size must be a positive integer/],
    ['defaults:\n  max_batch: 4', /defaults.max_batch is not a setting/],
    ['models:\n  iris:\n    default_priority: urgent', /models.iris.default_priority must be high, normal or low/],
    ['models:\n  iris:\n    preferred_batch_sizes: [4, -1]', /preferred_batch_sizes\[1\]/],
    ['models:\n  iris:\n    wait_when_idle: "yes"', /models.iris.wait_when_idle must be true or false/],
    ['servers: {}', /'servers' is not a section/],
    ['budgets:\n  max_request: 4', /budgets.max_request is not a budget; known: max_message_bytes, max_request_bytes/],
    ['budgets:\n  __proto__: 4', /budgets.__proto__ is not a budget/],
    ['budgets:\n  max_queue_bytes: -1', /budgets.max_queue_bytes must be a positive integer/],
  ])('rejects %j naming the setting', (text, message) => {
    expect(() => parseRouterConfig(text)).toThrow(message);
  });

  it('accepts an empty file', () => {
    expect(parseRouterConfig('')).toEqual({ defaults: DEFAULT_SERVING_CONFIG, models: {}, budgets: {} });
  });

  it('reads budgets by their snake_case names', () => {
    expect(parseRouterConfig('budgets:\n  max_request_bytes: 1024\n  max_session_memory_mib: 64\n  max_stream_inflight: 8').budgets)
      .toEqual({ maxRequestBytes: 1024, maxSessionMemoryMiB: 64, maxStreamInflight: 8 });
  });
});
