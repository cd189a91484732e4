import { describe, expect, it } from 'vitest';
import { chooseArm, Experiment, stickyKeyOf } from '../../../services/router/features/experiment.ts';
import { parseRouterConfig } from '../../../services/router/config/router-config.ts';

const split = { arms: [{ version: 1, weight: 90 }, { version: 2, weight: 10 }], stickyParameter: 'user' };

describe('A/B arms', () => {
  it('splits random traffic by weight', () => {
    let state = 7;
    const random = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const counts = { 1: 0, 2: 0 } as Record<number, number>;
    for (let index = 0; index < 10_000; index++) counts[chooseArm(split, undefined, random)] += 1;
    expect(counts[2] / 10_000).toBeGreaterThan(0.08);
    expect(counts[2] / 10_000).toBeLessThan(0.12);
  });

  it('keeps a sticky key on one arm, and spreads keys by weight', () => {
    const versions = Array.from({ length: 2000 }, (_, index) => chooseArm(split, `user-${index}`));
    expect(chooseArm(split, 'user-17')).toBe(versions[17]);
    const share = versions.filter((version) => version === 2).length / versions.length;
    expect(share).toBeGreaterThan(0.07);
    expect(share).toBeLessThan(0.13);
  });

  it('reads the sticky key from the request parameters', () => {
    expect(stickyKeyOf(split, { user: { stringParam: 'ada' } })).toBe('ada');
    expect(stickyKeyOf(split, { user: { int64Param: 42 } })).toBe('42');
    expect(stickyKeyOf(split, {})).toBeUndefined();
  });

  it('reports per-arm figures and tests each arm against the control', () => {
    const experiment = new Experiment(split);
    for (let index = 0; index < 40; index++) {
      experiment.recordRequest(1, 10 + (index % 5), false);
      experiment.recordRequest(2, 10 + (index % 5), index === 0);
      experiment.recordOutcome(1, index % 2);
      experiment.recordOutcome(2, 1 + (index % 2));
    }
    const report = experiment.report('m');
    expect(report.arms.map((arm) => [arm.version, arm.requests, arm.errors, arm.outcomes])).toEqual([[1, 40, 0, 40], [2, 40, 1, 40]]);
    expect(report.comparisons[0].outcome!.pValue).toBeLessThan(1e-6);
    expect(report.comparisons[0].latency!.pValue).toBeGreaterThan(0.5);
  });

  it('validates a split in the router config', () => {
    expect(parseRouterConfig('models:\n  m:\n    split:\n      sticky_parameter: user\n      arms: [{ version: 1, weight: 3 }, { version: 2, weight: 1 }]').models.m.split)
      .toEqual({ stickyParameter: 'user', arms: [{ version: 1, weight: 3 }, { version: 2, weight: 1 }] });
    expect(() => parseRouterConfig('models:\n  m:\n    split:\n      arms: [{ version: 1, weight: 1 }]')).toThrow(/at least two/);
    expect(() => parseRouterConfig('models:\n  m:\n    split:\n      arms: [{ version: 1, weight: 1 }, { version: 1, weight: 2 }]')).toThrow(/twice/);
    expect(() => parseRouterConfig('models:\n  m:\n    split:\n      arms: [{ version: 1, weight: 0 }, { version: 2, weight: 2 }]')).toThrow(/weight must be a positive/);
  });
});
