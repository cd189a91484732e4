/**
 * How the executor waits for a software GPU (gpu/device.ts): Dawn's polls spin for the first
 * 0.5 ms of a wait and then sleep 0.1 ms each, unless the work was said to take 1 ms or more, when
 * they sleep from the start so the spin does not take a core from the shaders.
 */
import { describe, expect, it } from 'vitest';
import { pollSleepMs, quietUntilFor } from '../../../services/executor/gpu/device.ts';

describe('pollSleepMs', () => {
  it('spins for the first 0.5 ms of a wait with nothing expected, then sleeps 0.1 ms a poll', () => {
    expect(pollSleepMs(100, 100, 0)).toBe(0);
    expect(pollSleepMs(100.49, 100, 0)).toBe(0);
    expect(pollSleepMs(100.5, 100, 0)).toBe(0.1);
    expect(pollSleepMs(130, 100, 0)).toBe(0.1);
  });

  it('sleeps until the quiet time ends, never past it, then spins from there', () => {
    expect(pollSleepMs(100, 100, 101.5)).toBe(0.1);
    expect(pollSleepMs(101.45, 100, 101.5)).toBeCloseTo(0.05, 9);
    expect(pollSleepMs(101.5, 100, 101.5)).toBe(0);
    expect(pollSleepMs(101.9, 100, 101.5)).toBe(0);
    expect(pollSleepMs(102.1, 100, 101.5)).toBe(0.1);
  });

  it('ignores a quiet time that ended before the wait began', () => {
    expect(pollSleepMs(200, 200, 101.5)).toBe(0);
  });
});

describe('quietUntilFor', () => {
  it('keeps polls sleeping for 1.5 times the expected work', () => {
    expect(quietUntilFor(100, 2, 0)).toBe(103);
  });

  it('changes nothing for work shorter than 1 ms or of unknown length', () => {
    expect(quietUntilFor(100, 0.99, 0)).toBe(0);
    expect(quietUntilFor(100, 0, 0)).toBe(0);
    expect(quietUntilFor(100, Number.NaN, 42)).toBe(42);
  });

  it('keeps the earlier end when other work is expected to end sooner, and replaces one already over', () => {
    expect(quietUntilFor(100, 10, 101)).toBe(101);
    expect(quietUntilFor(100, 1, 110)).toBe(101.5);
    expect(quietUntilFor(100, 1, 99)).toBe(101.5);
  });
});
