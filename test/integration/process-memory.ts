/** The resident memory of a process (an executor started by the harness), from /proc: Linux only. */
import { readFileSync } from 'node:fs';

/** Peak (VmHWM) and current (VmRSS) resident set of process `pid`, in bytes. */
export function processMemory(pid: number): { peakBytes: number; currentBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { peakBytes: kib('VmHWM'), currentBytes: kib('VmRSS') };
}
