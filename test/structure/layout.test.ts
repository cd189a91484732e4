/**
 * The layout rules the compiler cannot check: no import cycle between files or between folders,
 * no service importing the CLI, pure modules free of any transport, no hand-written file too long
 * to read in one sitting. Each rule reads the real import graph of services/.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const servicesDir = join(root, 'services');
const MAX_LINES = 500;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'generated' || entry.name === 'node_modules' ? [] : sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** Lines as `wc -l` counts them. */
const lineCount = (text: string) => text.split('\n').length - (text.endsWith('\n') ? 1 : 0);

const IMPORT = /(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** Every file's imports: relative ones resolved to files, bare ones kept as package names. */
function importGraph(): { local: Map<string, Set<string>>; packages: Map<string, Set<string>> } {
  const files = sourceFiles(servicesDir).map((path) => relative(root, path));
  const known = new Set(files);
  const local = new Map<string, Set<string>>();
  const packages = new Map<string, Set<string>>();
  for (const file of files) {
    const text = readFileSync(join(root, file), 'utf8');
    const targets = new Set<string>();
    const bare = new Set<string>();
    for (const match of text.matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2];
      if (specifier.startsWith('.')) {
        const target = relative(root, resolve(root, dirname(file), specifier));
        if (known.has(target)) targets.add(target);
      } else {
        bare.add(specifier);
      }
    }
    local.set(file, targets);
    packages.set(file, bare);
  }
  return { local, packages };
}

/** Strongly connected components with more than one member (Tarjan). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let counter = 0;
  const visit = (node: string) => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node)!, index.get(next)!));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      for (let member = stack.pop()!; ; member = stack.pop()!) {
        onStack.delete(member);
        component.push(member);
        if (member === node) break;
      }
      if (component.length > 1) found.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

/** The file graph collapsed to folders; a file's imports within its own folder are not edges. */
function folderGraph(files: Map<string, Set<string>>): Map<string, Set<string>> {
  const folders = new Map<string, Set<string>>();
  for (const [file, targets] of files) {
    const from = dirname(file);
    const edges = folders.get(from) ?? new Set<string>();
    for (const target of targets) if (dirname(target) !== from) edges.add(dirname(target));
    folders.set(from, edges);
  }
  return folders;
}

/** Every file `start` reaches through relative imports, itself included. */
function reachable(graph: Map<string, Set<string>>, start: string): Set<string> {
  const seen = new Set<string>([start]);
  for (const pending = [start]; pending.length > 0;) {
    for (const next of graph.get(pending.pop()!) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        pending.push(next);
      }
    }
  }
  return seen;
}

/** Folders whose code is pure: no transport may be imported, not even through another file. */
const PURE_FOLDERS = ['services/domain', 'services/executor/tensor', 'services/executor/ops', 'services/executor/compiler'];
const TRANSPORTS = ['@grpc/grpc-js', 'node:http', 'node:http2', 'node:net'];

describe('layout of services/', () => {
  const { local, packages } = importGraph();

  it('has no import cycle between files', () => {
    expect(cycles(local)).toEqual([]);
  });

  it('has no import cycle between folders', () => {
    expect(cycles(folderGraph(local))).toEqual([]);
  });

  it('has no service importing the CLI', () => {
    const offenders = [...local].flatMap(([file, targets]) =>
      /^services\/(registry|router|executor)\//.test(file) ? [...targets].filter((target) => target.startsWith('services/cli/')).map((target) => `${file} -> ${target}`) : []);
    expect(offenders).toEqual([]);
  });

  it('keeps pure modules free of transports', () => {
    const pureFiles = [...local.keys()].filter((file) => PURE_FOLDERS.some((folder) => file.startsWith(`${folder}/`)));
    expect(pureFiles.length).toBeGreaterThan(0);
    const offenders = pureFiles.flatMap((file) => [...reachable(local, file)]
      .flatMap((reached) => [...packages.get(reached) ?? []].filter((name) => TRANSPORTS.includes(name)).map((name) => `${file} reaches ${name} through ${reached}`)));
    expect(offenders).toEqual([]);
  });

  it(`has no hand-written file over ${MAX_LINES} lines, tests and benches included`, () => {
    const handWritten = [servicesDir, join(root, 'test'), join(root, 'bench')].flatMap(sourceFiles);
    const long = handWritten
      .map((path) => ({ file: relative(root, path), lines: lineCount(readFileSync(path, 'utf8')) }))
      .filter(({ lines }) => lines > MAX_LINES);
    expect(long).toEqual([]);
  });
});
