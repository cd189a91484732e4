/**
 * Makes SIGINT and SIGTERM end the process through process.exit, so its 'exit' handlers run and
 * stop what a bench started (deployments, processes under callgrind): a bench stopped by a CI
 * timeout or Ctrl-C leaves nothing behind. Without this Node dies of the signal and runs none.
 */
let installed = false;

export function exitOnSignals(): void {
  if (installed) return;
  installed = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));
}
