/**
 * ONNX's operator conformance cases, every one: a case passes or is listed in
 * expected-failures.json with the reason it does not. A listed case that starts passing fails
 * too, so the list only ever shrinks by being edited (`node test/conformance/run.ts
 * --write-expected` rewrites it from a run).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../services/executor/gpu/index.ts';
import { CASES_DIR, difference, ensureCases, expectedFailuresFile, listCases, runCase, summarize, type CaseResult } from './suite.ts';

ensureCases();
type ExpectedFailures = Record<string, { outcome: string; detail: string }>;
const expectedFailures = (opset?: number): ExpectedFailures =>
  JSON.parse(readFileSync(join(import.meta.dirname, expectedFailuresFile(opset)), 'utf8')).cases;

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

describe('the comparison', () => {
  const fp32 = (...values: number[]) => ({ datatype: 'FP32' as const, shape: [values.length], data: Float32Array.from(values) });
  it('takes values within tolerance and NaN for NaN', () => expect(difference(fp32(1.0005, Number.NaN, 0), fp32(1, Number.NaN, 1e-6))).toBeUndefined());
  it('names the first element out of tolerance', () => expect(difference(fp32(1, 2.01), fp32(1, 2))).toMatch(/element 1 is 2\.0099/));
  it('refuses a number for NaN, another shape or datatype', () => {
    expect(difference(fp32(0), fp32(Number.NaN))).toMatch(/element 0/);
    expect(difference(fp32(1, 2), { ...fp32(1, 2), shape: [2, 1] })).toMatch(/shape \[2\], expected \[2,1\]/);
    expect(difference({ datatype: 'INT32', shape: [1], data: Int32Array.of(1) }, { datatype: 'INT64', shape: [1], data: BigInt64Array.of(1n) })).toMatch(/datatype INT32/);
  });
  it('holds integers exact', () => expect(difference({ datatype: 'INT64', shape: [2], data: BigInt64Array.of(1n, 2n ** 60n) },
    { datatype: 'INT64', shape: [2], data: BigInt64Array.of(1n, 2n ** 60n + 1n) })).toMatch(/element 1/));
});

// Each case at its own opset (numpy's outputs), then lifted to opsets 21 and 26 (onnxruntime's).
describe.each([
  { at: 'their own opsets', opset: undefined },
  { at: 'opset 21', opset: 21 },
  { at: 'opset 26', opset: 26 },
])('ONNX operator conformance cases at $at', ({ opset }) => {
  const names = listCases(CASES_DIR);
  const listed = expectedFailures(opset);
  const results: CaseResult[] = [];
  afterAll(() => {
    const summary = summarize(results);
    console.log(`ONNX conformance${opset ? ` at opset ${opset}` : ''}: ${summary.passed} of ${summary.tensorCases} tensor cases pass `
      + `(${((100 * summary.passed) / summary.tensorCases).toFixed(1)}%); ${summary.byOutcome['non-tensor']} use sequences, optionals or maps, ${summary.byOutcome['faulty-case']} have faulty data`
      + `${opset ? `, ${summary.byOutcome['no-reference']} have no reference at ${opset}` : ''}`);
  });
  it('the generator wrote the whole suite', () => expect(names.length).toBeGreaterThan(900));
  it.each(names)('%s', async (name) => {
    const result = await runCase(gpu, CASES_DIR, name, { opset });
    results.push(result);
    const expected = listed[name];
    if (expected) {
      expect(result.outcome, `${name} now passes: take it out of test/conformance/${expectedFailuresFile(opset)}`).not.toBe('pass');
      expect(result.outcome, result.detail).toBe(expected.outcome);
    } else {
      expect(result.outcome, result.detail).toBe('pass');
    }
  });
});
