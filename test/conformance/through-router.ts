/**
 * ONNX's conformance cases through the services, from outside: each case stored as a model in a
 * registry, then sent to the router by a Python grpcio client (router_client.py) that reads the
 * case's data with onnx's own numpy_helper and compares the answers itself. What a user's
 * client sees, the KServe v2 boundary included (every datatype as raw contents).
 *
 *   node test/conformance/through-router.ts [--filter REGEX] [--every N]
 *
 * Cases with sequence, optional or map inputs or outputs are left out (the registry refuses
 * such graphs at store time: KServe v2 carries tensors only).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { storeModel } from '../../services/cli/commands/store.ts';
import { startCluster } from '../integration/harness.ts';
import { CASES_DIR, ensureCases, isTensorCase, listCases } from './suite.ts';

export interface RouterCaseResult {
  case: string;
  outcome: 'pass' | 'mismatch' | 'error';
  detail: string;
}

/** Model names are lower case (test_cast_FLOAT_to_DOUBLE is stored as test_cast_float_to_double); router_client.py does the same. */
const modelNameOf = (name: string) => name.toLowerCase();

/** Stores each case as a model of its name, runs the Python client over them, stops the services. */
export async function runThroughRouter(names: readonly string[], cases = CASES_DIR): Promise<RouterCaseResult[]> {
  const cluster = await startCluster();
  // No lineage: the cases are not code of a repository.
  const outside = await mkdtemp(join(tmpdir(), 'nexus-conformance-'));
  try {
    const refused: RouterCaseResult[] = [];
    const stored: string[] = [];
    for (const name of names) {
      const code = await storeModel(join(cases, name, 'model.onnx'), modelNameOf(name), {
        registry: cluster.registry.address, tag: [], lineagePath: outside, writeMeta: false,
      });
      if (code === 0) stored.push(name);
      else refused.push({ case: name, outcome: 'error', detail: `the registry refused to store it (nexus store exited with ${code})` });
    }
    if (stored.length === 0) return refused;
    const { stdout } = await promisify(execFile)('/usr/bin/python3', [
      join(import.meta.dirname, 'router_client.py'), '--address', cluster.router.address, '--cases', cases, ...stored,
    ], { maxBuffer: 64 << 20 });
    return [...refused, ...stdout.trim().split('\n').map((line) => JSON.parse(line) as RouterCaseResult)];
  } finally {
    await cluster.stop();
    await rm(outside, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { values: args } = parseArgs({ options: { filter: { type: 'string' }, every: { type: 'string', default: '1' } } });
  ensureCases();
  const filter = args.filter ? new RegExp(args.filter) : undefined;
  const every = Number(args.every);
  const names = listCases(CASES_DIR).filter((name) => isTensorCase(CASES_DIR, name)).filter((name, index) => (!filter || filter.test(name)) && index % every === 0);
  const started = performance.now();
  const results = await runThroughRouter(names);
  for (const result of results) if (result.outcome !== 'pass') console.log(`${result.outcome.padEnd(9)} ${result.case}: ${result.detail}`);
  const passed = results.filter((result) => result.outcome === 'pass').length;
  console.log(`\n${passed} of ${results.length} cases pass through the router (${((100 * passed) / results.length).toFixed(1)}%). `
    + `${((performance.now() - started) / 1000).toFixed(0)} s.`);
  process.exit(0);
}
