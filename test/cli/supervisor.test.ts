/**
 * The supervisor behind `nexus up`, with fake processes and fake timers: an unexpected exit is
 * announced and restarted after 0.5 s, doubling to 30 s while restarts follow each other, reset
 * once a child stays up a minute (and not for a start that takes a minute); the other children
 * are untouched, a failed start is retried, and stop() ends everything, cancels pending restarts
 * and waits for a restart that is starting, then stops what it started.
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

/** A start() whose outcome the test decides: `settle` resolves or rejects the promise it returned. */
function heldStart() {
  const calls: { resolve(process: ChildProcess): void; reject(error: Error): void }[] = [];
  const start = () => new Promise<ChildProcess>((resolve, reject) => calls.push({ resolve, reject }));
  return { start, calls };
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

it('does not forgive past restarts for a start that takes a minute, failed or not', async () => {
  const { start, calls } = heldStart();
  const executor = fakeProcess();
  supervisor.supervise('executor-0', executor, start);
  executor.exit(134);
  await vi.advanceTimersByTimeAsync(500);
  expect(calls).toHaveLength(1);
  await vi.advanceTimersByTimeAsync(61_000);
  calls[0].reject(new Error('executor-0 did not start within 120s'));
  await vi.advanceTimersByTimeAsync(0);
  expect(notices.at(-1)).toBe('executor-0 failed to start (executor-0 did not start within 120s); restarting in 1 s (restart 2)');

  await vi.advanceTimersByTimeAsync(1000);
  expect(calls).toHaveLength(2);
  await vi.advanceTimersByTimeAsync(61_000);
  const slow = fakeProcess();
  calls[1].resolve(slow);
  await vi.advanceTimersByTimeAsync(0);
  expect(notices.at(-1)).toBe(`executor-0 restarted (pid ${slow.pid})`);
  // Up for a moment only, after a minute of starting: the backoff goes on.
  slow.exit(1);
  expect(notices.at(-1)).toBe('executor-0 exited with code 1; restarting in 2 s (restart 3)');
});

it('waits for a restart that is starting when stopped, then stops what it started', async () => {
  const { start, calls } = heldStart();
  const executor = fakeProcess();
  const router = fakeProcess();
  supervisor.supervise('executor-0', executor, start);
  supervisor.supervise('router', router, async () => fakeProcess());
  executor.exit(134);
  await vi.advanceTimersByTimeAsync(500);
  expect(calls).toHaveLength(1);

  let stopped = false;
  const stopping = supervisor.stop().then(() => (stopped = true));
  await vi.advanceTimersByTimeAsync(5_000);
  expect([stopped, router.signalCode]).toEqual([false, 'SIGTERM']);

  const restarted = fakeProcess();
  calls[0].resolve(restarted);
  await stopping;
  expect(restarted.signalCode).toBe('SIGTERM');
  expect(supervisor.processOf('executor-0')).toBe(restarted);
  expect(notices).toEqual(['executor-0 exited with code 134; restarting in 0.5 s (restart 1)']);
});

it('stops without retrying when the restart in flight fails to start', async () => {
  const { start, calls } = heldStart();
  const executor = fakeProcess();
  supervisor.supervise('executor-0', executor, start);
  executor.exit(134);
  await vi.advanceTimersByTimeAsync(500);

  let stopped = false;
  const stopping = supervisor.stop().then(() => (stopped = true));
  await vi.advanceTimersByTimeAsync(0);
  expect(stopped).toBe(false);
  calls[0].reject(new Error('executor-0 exited with code 1 while starting'));
  await stopping;
  await vi.advanceTimersByTimeAsync(60_000);
  expect(calls).toHaveLength(1);
  expect(notices).toHaveLength(1);
});
