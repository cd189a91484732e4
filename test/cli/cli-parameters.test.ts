/** `nexus infer --param key=value`: each value gets the parameter type a router reads it as. */
import { describe, expect, it } from 'vitest';
import { parseParameters } from '../../services/cli/commands/infer.ts';

describe('parseParameters', () => {
  it('types integers, decimals, booleans and text, keeping text that merely starts like a number', () => {
    expect(parseParameters(['priority=1', 'timeout=50000', 'ratio=0.25', 'stream=false', 'user=alice', 'id=12ab', 'empty='])).toEqual({
      priority: { int64Param: 1 },
      timeout: { int64Param: 50000 },
      ratio: { doubleParam: 0.25 },
      stream: { boolParam: false },
      user: { stringParam: 'alice' },
      id: { stringParam: '12ab' },
      empty: { stringParam: '' },
    });
  });

  it('keeps everything after the first = in the value, and refuses an entry without a key', () => {
    expect(parseParameters(['query=a=b'])).toEqual({ query: { stringParam: 'a=b' } });
    expect(() => parseParameters(['=1'])).toThrow("--param '=1' must look like key=value");
    expect(() => parseParameters(['user'])).toThrow("--param 'user' must look like key=value");
  });
});
