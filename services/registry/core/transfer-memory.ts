/**
 * Keeps a long transfer's memory flat. Every chunk that crosses the registry leaves a few
 * short-lived buffers behind (HTTP/2 frames, the gRPC message, its encoding), and V8 frees
 * buffers only when a garbage collection runs: by default not before some 64 MB of them have
 * piled up, and glibc then keeps that peak resident. A young-generation collection every few
 * megabytes moved frees them while they are still young, for about a millisecond each. Measured
 * on a 1 GiB upload and download, the registry's peak resident memory is ~205 MB without it,
 * 183–190 MB collecting every 8 MiB and 170–173 MB every 4 MiB, at the same throughput (of which
 * ~130 MB is the idle process, most of it Node's TypeScript loader and the gRPC stack).
 *
 * The collector is reached through a context created with --expose-gc set for that moment only;
 * where that is not possible this does nothing.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Bytes moved between two young-generation collections. */
export const COLLECT_EVERY_BYTES = 4 * 1024 * 1024;

type Collector = (options: { type: 'minor' | 'major'; execution?: 'sync' | 'async' }) => void;

function findCollector(): Collector | undefined {
  try {
    setFlagsFromString('--expose-gc');
    const collector = runInNewContext('gc') as Collector | undefined;
    setFlagsFromString('--no-expose-gc');
    return typeof collector === 'function' ? collector : undefined;
  } catch {
    return undefined;
  }
}

const collect = findCollector();
let movedSinceCollection = 0;

/** Counts bytes a transfer moved, collecting young garbage every COLLECT_EVERY_BYTES. */
export function noteTransferredBytes(bytes: number): void {
  if (!collect) return;
  movedSinceCollection += bytes;
  if (movedSinceCollection < COLLECT_EVERY_BYTES) return;
  movedSinceCollection = 0;
  collect({ type: 'minor' });
}
