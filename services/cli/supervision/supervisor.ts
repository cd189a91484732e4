/**
 * Keeps child processes running: one that exits while nobody asked it to is started again after
 * a delay that doubles with each restart in a row, and the others are left alone. A child that
 * stays up long enough is forgiven its past restarts. stop() ends every child and every pending
 * restart, once, including a child whose restart is starting at that moment.
 */
import type { ChildProcess } from 'node:child_process';

export interface SupervisorOptions {
  /** Delay before the first restart, in milliseconds. Default 500. */
  initialDelayMs?: number;
  /** Longest delay between restarts, in milliseconds. Default 30 000. */
  maxDelayMs?: number;
  /** How long a child must stay up for its next exit to count as a first one, in milliseconds. Default 60 000. */
  stableAfterMs?: number;
  /** How long stop() waits for a child to exit after SIGTERM before SIGKILL, in milliseconds. Default 10 000. */
  stopGraceMs?: number;
  /** Where restarts are announced. Default: console.error. */
  notice?: (line: string) => void;
}

/** The delay before restart number `restart` (1 for the first): `initial · 2^(restart-1)`, at most `max`. */
export function restartDelayMs(restart: number, initialDelayMs = 500, maxDelayMs = 30_000): number {
  return Math.min(maxDelayMs, initialDelayMs * 2 ** Math.max(0, restart - 1));
}

/** A delay in seconds as people read it: 0.5 s, 1 s, 30 s. */
const seconds = (ms: number) => `${Number((ms / 1000).toFixed(1))} s`;

interface Supervised {
  name: string;
  /** The process last started; while `starting` is set, the dead one it replaces. */
  process: ChildProcess;
  /** When `process` finished starting (not when its start began). */
  startedAtMs: number;
  /** Restarts in a row (reset once the child stays up `stableAfterMs`). */
  restarts: number;
  start: () => Promise<ChildProcess>;
  /** The pending restart. */
  timer?: NodeJS.Timeout;
  /** The restart's start() in flight: stop() waits for it, then stops what it started. */
  starting?: Promise<ChildProcess>;
}

export class Supervisor {
  private readonly children = new Map<string, Supervised>();
  private readonly options: Required<SupervisorOptions>;
  private stopping: Promise<void> | undefined;

  constructor(options: SupervisorOptions = {}) {
    this.options = {
      initialDelayMs: 500, maxDelayMs: 30_000, stableAfterMs: 60_000, stopGraceMs: 10_000,
      notice: (line) => console.error(line), ...options,
    };
  }

  /**
   * Watches `process` (already started) under `name`; when it exits unexpectedly, `start` is
   * called to start it again (and again, with backoff, while starting fails).
   */
  supervise(name: string, process: ChildProcess, start: () => Promise<ChildProcess>): void {
    const child: Supervised = { name, process, startedAtMs: Date.now(), restarts: 0, start };
    this.children.set(name, child);
    this.watchExit(child);
  }

  /** The process running under `name` now. */
  processOf(name: string): ChildProcess | undefined {
    return this.children.get(name)?.process;
  }

  private watchExit(child: Supervised): void {
    const watched = child.process;
    watched.once('exit', (code, signal) => {
      if (this.stopping || child.process !== watched) return;
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      this.scheduleRestart(child, how, Date.now() - child.startedAtMs);
    });
  }

  /** `upForMs`: how long the child ran before this exit; absent when it never came up. */
  private scheduleRestart(child: Supervised, how: string, upForMs?: number): void {
    if (upForMs !== undefined && upForMs >= this.options.stableAfterMs) child.restarts = 0;
    child.restarts += 1;
    const delay = restartDelayMs(child.restarts, this.options.initialDelayMs, this.options.maxDelayMs);
    this.options.notice(`${child.name} ${how}; restarting in ${seconds(delay)} (restart ${child.restarts})`);
    child.timer = setTimeout(() => void this.restart(child), delay);
    child.timer.unref();
  }

  private async restart(child: Supervised): Promise<void> {
    child.timer = undefined;
    if (this.stopping) return;
    try {
      const starting = child.start();
      child.starting = starting;
      const started = await starting;
      child.process = started;
      child.startedAtMs = Date.now();
      // Stopping already: stop() is waiting on `starting` and stops this process itself.
      if (this.stopping) return;
      this.options.notice(`${child.name} restarted (pid ${started.pid})`);
      this.watchExit(child);
    } catch (error) {
      // A start that failed never came up, however long it took: the backoff goes on.
      if (!this.stopping) this.scheduleRestart(child, `failed to start (${(error as Error).message.split('\n')[0]})`);
    } finally {
      child.starting = undefined;
    }
  }

  /**
   * Stops every child (SIGTERM, then SIGKILL after the grace period) and cancels pending restarts.
   * A restart that is starting is waited for and what it started is stopped, so no child outlives
   * the promise.
   */
  stop(): Promise<void> {
    this.stopping ??= Promise.all([...this.children.values()].map(async (child) => {
      clearTimeout(child.timer);
      child.timer = undefined;
      const running = child.starting ? await child.starting.catch(() => undefined) : child.process;
      if (running) await stopProcess(running, this.options.stopGraceMs);
    })).then(() => undefined);
    return this.stopping;
  }
}

/** Sends SIGTERM and waits for the exit, sending SIGKILL after `graceMs`. */
function stopProcess(child: ChildProcess, graceMs: number): Promise<void> {
  return new Promise<void>((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    kill.unref();
    child.once('exit', () => {
      clearTimeout(kill);
      done();
    });
    child.kill('SIGTERM');
  });
}
