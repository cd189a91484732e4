/** The performance gate's decisions: limits from measured values, pass and fail, baseline updates. */
import { describe, expect, it } from 'vitest';
import { check, limitFor, updatedBaselines, type BaselineFile } from '../../bench/gate/policy.ts';
import type { Figure } from '../../bench/lib/report.ts';

const ratio = (value: number): Figure => ({ id: 'kernels.matmul_256x1024x1024.webgpu_over_ours', value, unit: 'x', better: 'higher', label: 'matmul: ORT / ours' });
const instructions = (value: number): Figure => ({ id: 'cpu.router.instructions_per_request', value, unit: 'instructions', better: 'lower', label: 'router' });
const p95 = (value: number): Figure => ({ id: 'latency.iris.c4.p95_ms', value, unit: 'ms', better: 'lower', label: 'iris p95' });

function baselinesFrom(figures: Figure[]): BaselineFile {
  return updatedBaselines(undefined, [figures], { date: 'then' }).next;
}

describe('limits', () => {
  it('puts a ratio floor at 60% of the measured ratio, an instruction ceiling 10% above, latency at its fixed budget', () => {
    expect(limitFor(ratio(3), 3)).toEqual({ limit: 1.8, rule: '60% of measured' });
    expect(limitFor(instructions(400_000), 400_000)).toEqual({ limit: 440_000, rule: 'measured + 10%' });
    expect(limitFor(p95(7), 7)).toEqual({ limit: 50, rule: 'fixed budget' });
  });
});

describe('a gate run', () => {
  const baselines = baselinesFrom([ratio(3), instructions(400_000), p95(7)]);

  it('passes figures within their limits, noise included', () => {
    const verdicts = check([ratio(1.9), instructions(430_000), p95(40)], baselines);
    expect(verdicts.map((verdict) => verdict.passed)).toEqual([true, true, true]);
  });

  it('fails a ratio halved, instructions up by a fifth, a latency over budget, and says by how much', () => {
    const verdicts = check([ratio(1.5), instructions(480_000), p95(51)], baselines);
    expect(verdicts.map((verdict) => verdict.passed)).toEqual([false, false, false]);
    expect(verdicts[0].reason).toBe('1.50x is below the floor of 1.80x (-50.0% against the baseline)');
    expect(verdicts[1].reason).toBe('480,000 instructions is above the ceiling of 440,000 instructions (+20.0% against the baseline)');
    expect(verdicts[2].reason).toContain('above the ceiling of 50.00 ms');
  });

  it('fails a baseline the run did not measure, and a gated figure that has no baseline', () => {
    const verdicts = check([ratio(3), p95(5), { ...instructions(1), id: 'cpu.executor.instructions_per_request' }], baselines);
    expect(verdicts.find((verdict) => verdict.id === 'cpu.router.instructions_per_request')).toMatchObject({ passed: false, reason: 'not measured in this run' });
    expect(verdicts.find((verdict) => verdict.id === 'cpu.executor.instructions_per_request')!.reason).toContain('no baseline');
  });

  it('ignores figures the gate does not hold', () => {
    const verdicts = check([ratio(3), instructions(400_000), p95(5), { ...ratio(0.1), id: 'registry.upload_over_copy' }], baselines);
    expect(verdicts.every((verdict) => verdict.passed)).toBe(true);
  });
});

describe('updating the baselines', () => {
  it('takes the median of the repetitions and prints old → new with the spread', () => {
    const old = baselinesFrom([ratio(3), instructions(400_000)]);
    const { next, lines } = updatedBaselines(old, [[ratio(2.8), instructions(410_000)], [ratio(3.2), instructions(404_000)], [ratio(3.0), instructions(406_000)]], { date: 'now' });
    expect(next.figures['kernels.matmul_256x1024x1024.webgpu_over_ours']).toMatchObject({ measured: 3, limit: 1.8 });
    expect(next.figures['cpu.router.instructions_per_request']).toMatchObject({ measured: 406_000, limit: 446_600 });
    expect(lines[1]).toBe('cpu.router.instructions_per_request: measured 400,000 instructions → 406,000 instructions, '
      + 'limit 440,000 instructions → 446,600 instructions (measured + 10%; 3 runs 404,000 instructions … 410,000 instructions, spread +1.5%)');
  });

  it('says which figures are new and which were dropped', () => {
    const old = baselinesFrom([ratio(3), instructions(400_000)]);
    const { lines } = updatedBaselines(old, [[ratio(3), p95(6)]], { date: 'now' });
    expect(lines).toContain('latency.iris.c4.p95_ms: new, measured 6.00 ms, limit 50.00 ms (fixed budget)');
    expect(lines).toContain('cpu.router.instructions_per_request: dropped (not measured any more)');
  });

  it('refuses to take baselines from a run whose requests failed', () => {
    expect(() => updatedBaselines(undefined, [[{ id: 'latency.iris.errors', value: 2, unit: 'requests', better: 'lower', label: 'errors' }]], {}))
      .toThrow('iris requests failed');
  });
});
