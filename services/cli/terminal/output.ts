/** How the CLI talks to people (tables, plain lines) and scripts (--json), and its exit codes. */
import { status } from '@grpc/grpc-js';
import Table from 'cli-table3';
import { formatSplit, isCodedRemoteError, type SplitArm } from '../../domain/index.ts';

/** Exit codes: scripts can tell a missing model from bad input from a server that is down. */
export const ExitCode = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  INVALID_INPUT: 4,
  UNAVAILABLE: 5,
  REFUSED: 6,
} as const;

export function printTable(head: string[], rows: Array<Array<string | number>>): void {
  // Colour only on a terminal: piped into grep or a file, escape codes are noise.
  const colour = process.stdout.isTTY === true;
  const table = new Table({ head, style: colour ? { head: ['cyan'] } : { head: [], border: [] } });
  table.push(...rows.map((row) => row.map(String)));
  console.log(table.toString());
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, (_key, item) => (typeof item === 'bigint' ? item.toString() : item), 2));
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** `3`, or `3=90,4=10 (sticky user)`: where an alias sends traffic, for tables and messages. */
export function formatDestination(version: number, split: readonly SplitArm[], stickyParameter: string): string {
  if (split.length === 0) return String(version);
  return `${formatSplit(split)}${stickyParameter ? ` (sticky ${stickyParameter})` : ''}`;
}

/** Prints an error for a person and returns the exit code that classifies it. */
export function reportError(error: unknown, what: string): number {
  if (isCodedRemoteError(error)) {
    const name = status[error.code] ?? String(error.code);
    console.error(`${what}: ${error.details || error.message} (${name})`);
    if (error.code === status.NOT_FOUND) return ExitCode.NOT_FOUND;
    if (error.code === status.INVALID_ARGUMENT || error.code === status.OUT_OF_RANGE) return ExitCode.INVALID_INPUT;
    if (error.code === status.UNAVAILABLE || error.code === status.DEADLINE_EXCEEDED) return ExitCode.UNAVAILABLE;
    if (error.code === status.FAILED_PRECONDITION || error.code === status.RESOURCE_EXHAUSTED) return ExitCode.REFUSED;
    return ExitCode.FAILURE;
  }
  console.error(`${what}: ${error instanceof Error ? error.message : String(error)}`);
  return ExitCode.FAILURE;
}
