import { describe, expect, it } from 'vitest';
import type { Tensor } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { cacheKeyOf, ResponseCache } from '../../../services/router/features/response-cache.ts';
import type { ValidatedRequest } from '../../../services/router/admission/request-validation.ts';

const outputs = (bytes: number): Map<string, Tensor> =>
  new Map([['y', { name: 'y', datatype: 'UINT8', shape: [bytes], data: new Uint8Array(bytes).fill(7) }]]);

const request = (values: number[], shape = [1, values.length]): ValidatedRequest => ({
  inputs: [{ name: 'x', datatype: 'FP32', shape, data: new Uint8Array(new Float32Array(values).buffer) }],
  rows: shape[0], shapeKey: '', outputNames: ['y'], rawOutput: false, inputBytes: 0, outputBytes: 0,
});

describe('ResponseCache', () => {
  it('counts hits and misses', () => {
    const cache = new ResponseCache({ maxBytes: 100, ttlMs: 1000 });
    expect(cache.get('a')).toBeUndefined();
    cache.set('a', outputs(10));
    expect(cache.get('a')!.get('y')!.data.byteLength).toBe(10);
    expect([cache.hits, cache.misses]).toEqual([1, 1]);
  });

  it('evicts the least recently used entries to stay within its byte budget', () => {
    const cache = new ResponseCache({ maxBytes: 25, ttlMs: 1000 });
    cache.set('a', outputs(10));
    cache.set('b', outputs(10));
    cache.get('a'); // a is now more recent than b
    cache.set('c', outputs(10));
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBeDefined();
    expect(cache.get('c')).toBeDefined();
    expect(cache.sizeBytes).toBe(20);
  });

  it('expires entries after the TTL', () => {
    let now = 0;
    const cache = new ResponseCache({ maxBytes: 100, ttlMs: 50, now: () => now });
    cache.set('a', outputs(10));
    now = 50;
    expect(cache.get('a')).toBeDefined();
    now = 51;
    expect(cache.get('a')).toBeUndefined();
    expect(cache.sizeBytes).toBe(0);
  });

  it('never stores an entry larger than the whole budget', () => {
    const cache = new ResponseCache({ maxBytes: 5, ttlMs: 1000 });
    cache.set('big', outputs(10));
    expect(cache.get('big')).toBeUndefined();
  });

  it('keys on the version and every byte and dimension of the inputs', () => {
    const base = cacheKeyOf('m:1', request([1, 2, 3, 4]));
    expect(cacheKeyOf('m:1', request([1, 2, 3, 4]))).toBe(base);
    expect(cacheKeyOf('m:2', request([1, 2, 3, 4]))).not.toBe(base);
    expect(cacheKeyOf('m:1', request([1, 2, 3, 5]))).not.toBe(base);
    expect(cacheKeyOf('m:1', request([1, 2, 3, 4], [2, 2]))).not.toBe(base);
  });
});
