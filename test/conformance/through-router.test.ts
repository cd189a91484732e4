/**
 * A sample of ONNX's conformance cases (every 20th tensor case) through registry, router and
 * executor, sent and checked by a Python grpcio client with onnx's numpy_helper: a case passes
 * through the services exactly when it passes in process (expected-failures.json), so the
 * protocol boundary (every datatype as raw contents, shapes, loading unwarmed models) loses
 * nothing. `node test/conformance/through-router.ts` runs the whole suite this way.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CASES_DIR, ensureCases, expectedFailuresFile, FAULTY_CASES, isTensorCase, listCases } from './suite.ts';
import { runThroughRouter } from './through-router.ts';

const SAMPLE_EVERY = 20;

ensureCases();
const expectedFailures: Record<string, unknown> = JSON.parse(readFileSync(join(import.meta.dirname, expectedFailuresFile()), 'utf8')).cases;
const sample = listCases(CASES_DIR).filter((name) => isTensorCase(CASES_DIR, name)).filter((_, index) => index % SAMPLE_EVERY === 0);

describe('ONNX conformance cases through the router, from a Python client', () => {
  it(`passes the ${sample.length} sampled cases that pass in process, and only those`, async () => {
    const results = await runThroughRouter(sample);
    expect(results.map((result) => result.case).sort()).toEqual([...sample].sort());
    for (const result of results) {
      // A faulty case fails through the router as in process, whatever it is listed as.
      const passesInProcess = !(result.case in expectedFailures) && !(result.case in FAULTY_CASES);
      expect(result.outcome === 'pass', `${result.case}: ${result.outcome} ${result.detail}`).toBe(passesInProcess);
    }
  }, 300_000);
});
