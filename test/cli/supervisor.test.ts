/**
 * The supervisor behind `nexus up`, with fake processes and fake timers: an unexpected exit is
 * announced and restarted after 0.5 s, doubling to 30 s while restarts follow each other, reset
 * once a child stays up a minute; the other children are untouched, a failed start is retried,
 * and stop() ends everything and cancels pending restarts.
 */
import type { ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { restartDelayMs, Supervisor } from '../../services/cli/supervision/index.ts';

let nextPid = 100;

/** A stand-in ChildProcess: exit(code, signal) ends it, kill() ends it by signal. */
function fakeProcess(): ChildProcess & { exit(code: number | null, signal?: NodeJS.Signals): void } {
  const emitter = new EventEmitter() as ChildProcess & { exit(code: number | null, signal?: NodeJS.Signals): void };
  Object.assign(emitter, {
    pid: nextPid++, exitCode: null, signalCode: null,
    exit(code: number | null, signal?: NodeJS.Signals) {
      Object.assign(emitter, { exitCode: code, signalCode: signal ?? null });
      emitter.emit('exit', code, signal ?? null);
    },
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      queueMicrotask(() => emitter.exit(null, signal));
      return true;
    },
  });
  return emitter;
}

let notices: string[];
let supervisor: Supervisor;

beforeEach(() => {
  vi.useFakeTimers();
  notices = [];
  supervisor = new Supervisor({ notice: (line) => notices.push(line) });
});

afterEach(() => {
  vi.useRealTimers();
});

it('computes 0.5 s doubling to at most 30 s', () => {
  expect([1, 2, 3, 4, 5, 6, 7, 8, 20].map((restart) => restartDelayMs(restart))).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]);
});

it('restarts a child that exits with backoff, and leaves the others running', async () => {
  const started: ReturnType<typeof fakeProcess>[] = [];
  const start = async () => {
    const child = fakeProcess();
    started.push(child);
    return child;
  };
  const executor = fakeProcess();
  const router = fakeProcess();
  supervisor.supervise('executor-0', executor, start);
  supervisor.supervise('router', router, async () => fakeProcess());

  executor.exit(134);
  expect(notices).toEqual(['executor-0 exited with code 134; restarting in 0.5 s (restart 1)']);
  await vi.advanceTimersByTimeAsync(499);
  expect(started).toHaveLength(0);
  await vi.advanceTimersByTimeAsync(1);
  expect(started).toHaveLength(1);
  expect(notices[1]).toBe(`executor-0 restarted (pid ${started[0].pid})`);
  expect(supervisor.processOf('executor-0')).toBe(started[0]);

  started[0].exit(null, 'SIGKILL');
  expect(notices[2]).toBe('executor-0 was killed by SIGKILL; restarting in 1 s (restart 2)');
  await vi.advanceTimersByTimeAsync(1000);
  expect(started).toHaveLength(2);
  expect(router.exitCode).toBeNull();
  expect(supervisor.processOf('router')).toBe(router);

  // Up for a minute: the next exit counts as a first one again.
  await vi.advanceTimersByTimeAsync(60_000);
  started[1].exit(1);
  expect(notices.at(-1)).toBe('executor-0 exited with code 1; restarting in 0.5 s (restart 1)');
});

it('retries a start that fails, with the next delay', async () => {
  let attempts = 0;
  const flaky = async () => {
    attempts += 1;
    if (attempts === 1) throw new Error('registry exited with code 1 while starting; last log lines:\nEADDRINUSE');
    return fakeProcess();
  };
  const registry = fakeProcess();
  supervisor.supervise('registry', registry, flaky);
  registry.exit(1);
  await vi.advanceTimersByTimeAsync(500);
  expect(notices.at(-1)).toBe('registry failed to start (registry exited with code 1 while starting; last log lines:); restarting in 1 s (restart 2)');
  await vi.advanceTimersByTimeAsync(1000);
  expect(attempts).toBe(2);
  expect(notices.at(-1)).toMatch(/^registry restarted \(pid \d+\)$/);
});

it('stops every child and cancels a pending restart', async () => {
  const start = vi.fn(async () => fakeProcess());
  const executor = fakeProcess();
  const router = fakeProcess();
  supervisor.supervise('executor-0', executor, start);
  supervisor.supervise('router', router, start);
  executor.exit(134);
  await supervisor.stop();
  expect(router.signalCode).toBe('SIGTERM');
  await vi.advanceTimersByTimeAsync(60_000);
  expect(start).not.toHaveBeenCalled();
  expect(notices).toHaveLength(1);
});
