/**
 * Regenerates the TypeScript for every .proto under proto/ with buf and ts-proto.
 *   node services/protocol/codegen.ts          write services/protocol/generated/
 *   node services/protocol/codegen.ts --check  exit 1 if the committed output is stale
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '../..');
export const generatedDir = join(repoRoot, 'services/protocol/generated');

/** Runs buf generate with proto/buf.gen.yaml into `outDir`. */
export function generate(outDir: string): void {
  const buf = join(repoRoot, 'node_modules/.bin/buf');
  execFileSync(buf, ['generate', '--template', 'buf.gen.yaml', '-o', outDir], {
    cwd: join(repoRoot, 'proto'),
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((entry) => statSync(join(dir, entry)).isFile())
    .sort();
}

/** The relative paths whose content differs between two generated trees (missing files included). */
export function diffTrees(expectedDir: string, actualDir: string): string[] {
  const expected = listFiles(expectedDir);
  const actual = new Set(listFiles(actualDir));
  const differing = expected.filter(
    (file) => !actual.has(file) || !readFileSync(join(expectedDir, file)).equals(readFileSync(join(actualDir, file))),
  );
  const extra = [...actual].filter((file) => !expected.includes(file));
  return [...differing, ...extra];
}

/** Generates into a temporary directory and lists the committed files that differ from it. */
export function findStaleFiles(): string[] {
  const freshDir = mkdtempSync(join(tmpdir(), 'nexus-proto-'));
  try {
    generate(freshDir);
    return diffTrees(freshDir, generatedDir);
  } finally {
    rmSync(freshDir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  if (process.argv.includes('--check')) {
    const stale = findStaleFiles();
    if (stale.length > 0) {
      console.error(`generated code is stale; run \`npm run proto\`:\n  ${stale.join('\n  ')}`);
      process.exit(1);
    }
    console.log(`generated code in ${relative(repoRoot, generatedDir)} is up to date`);
  } else {
    rmSync(generatedDir, { recursive: true, force: true });
    generate(generatedDir);
    console.log(`wrote ${relative(repoRoot, generatedDir)}`);
  }
}
