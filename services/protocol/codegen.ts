/**
 * Regenerates the TypeScript for every .proto under proto/ with buf and ts-proto, then points
 * each gRPC service's serializers at wire-encoding.ts (ts-proto's encode once more through
 * BinaryWriter's growing buffer and Buffer.from, copying a tensor several times).
 *   node services/protocol/codegen.ts          write services/protocol/generated/
 *   node services/protocol/codegen.ts --check  exit 1 if the committed output is stale
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '../..');
export const generatedDir = join(repoRoot, 'services/protocol/generated');

/** Runs buf generate with proto/buf.gen.yaml into `outDir`, then wireSerializers on every file. */
export function generate(outDir: string): void {
  const buf = join(repoRoot, 'node_modules/.bin/buf');
  execFileSync(buf, ['generate', '--template', 'buf.gen.yaml', '-o', outDir], {
    cwd: join(repoRoot, 'proto'),
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  for (const file of listFiles(outDir)) {
    const path = join(outDir, file);
    const source = readFileSync(path, 'utf8');
    const wired = wireSerializers(source, file);
    if (wired !== source) writeFileSync(path, wired);
  }
}

/** ts-proto's serializer of a gRPC method's message. */
const GENERATED_SERIALIZER = /Buffer\.from\((\w+)\.encode\(value\)\.finish\(\)\)/g;

/** The packages whose large fields are aligned for their receiver: our own executor link, never a public API. */
const ALIGNED_PACKAGES = [`nexus${sep}executor${sep}`];

/**
 * `source` (the generated file `file`, relative to the generated directory) with its services'
 * serializers calling encodeForWire (wire-encoding.ts), aligned in ALIGNED_PACKAGES. Pure.
 */
function wireSerializers(source: string, file: string): string {
  if (!source.includes('.encode(value).finish())')) return source;
  const aligned = ALIGNED_PACKAGES.some((prefix) => file.startsWith(prefix));
  const body = source.replace(GENERATED_SERIALIZER, (_, type: string) => `encodeForWire(${type}, value${aligned ? ', ALIGNED' : ''})`);
  const modulePath = relative(join(generatedDir, dirname(file)), join(repoRoot, 'services/protocol/wire-encoding.ts')).split(sep).join('/');
  const declarations = `import { encodeForWire } from "${modulePath}";\n${aligned ? 'const ALIGNED = { align: true };\n' : ''}`;
  // After the generated imports, before the first declaration.
  const at = body.search(/^(export )?(const|interface|type|function|class) /m);
  return `${body.slice(0, at)}${declarations}\n${body.slice(at)}`;
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
