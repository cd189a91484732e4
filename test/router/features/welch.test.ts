import { describe, expect, it } from 'vitest';
import { RunningStats, studentTTwoSidedP, welchTTest } from '../../../services/router/features/welch.ts';

const statsOf = (values: number[]) => {
  const stats = new RunningStats();
  for (const value of values) stats.add(value);
  return stats;
};

describe('Welch t-test', () => {
  it('matches the Student t distribution\'s known two-sided p-values', () => {
    // Reference values from the t tables.
    expect(studentTTwoSidedP(2.228, 10)).toBeCloseTo(0.05, 3);
    expect(studentTTwoSidedP(1.96, 1e6)).toBeCloseTo(0.05, 3);
    expect(studentTTwoSidedP(12.706, 1)).toBeCloseTo(0.05, 3);
    expect(studentTTwoSidedP(2.0, 10)).toBeCloseTo(0.0734, 3);
    expect(studentTTwoSidedP(0, 5)).toBeCloseTo(1, 10);
  });

  it('computes mean and sample variance incrementally', () => {
    const stats = statsOf([2, 4, 4, 4, 5, 5, 7, 9]);
    expect(stats.mean).toBe(5);
    expect(stats.variance).toBeCloseTo(32 / 7, 12);
  });

  it('matches a worked example', () => {
    // Two samples with unequal variances; t and df by the Welch–Satterthwaite formula.
    const a = statsOf([27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]);
    const b = statsOf([27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]);
    const result = welchTTest(a, b)!;
    expect(result.t).toBeCloseTo(-2.46, 2);
    expect(result.degreesOfFreedom).toBeCloseTo(24.99, 1);
    expect(result.pValue).toBeCloseTo(0.021, 3);
  });

  it('is undefined without enough data', () => {
    expect(welchTTest(statsOf([1]), statsOf([1, 2, 3]))).toBeUndefined();
    expect(welchTTest(statsOf([1, 1]), statsOf([1, 1]))).toBeUndefined();
  });
});
