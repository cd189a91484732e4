/**
 * ONNX's operator conformance cases (test/conformance/generate.sh) run on our executor: each case
 * is a one-node model (or a small model) with inputs and the outputs numpy computed for them.
 * A case is compiled as the executor service compiles a stored model (fp32, the model's own
 * opset imports) and run once; its outputs must match the expected ones in datatype, shape and
 * value. Nothing here knows which operators we support: a case we cannot run says why.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCode, NexusError } from '../../services/domain/errors.ts';
import type { GpuContext } from '../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../services/executor/runtime/index.ts';
import { numberView } from '../../services/executor/tensor/values.ts';
import { decodeModel, tensorFromProto, type HostTensor } from '../../services/onnx/model.ts';
import { TensorProto, TensorProto_DataType, type GraphProto, type ValueInfoProto } from '../../services/protocol/generated/onnx/onnx.ts';
import { liftOpset, ortOutputs } from './lifted.ts';

/**
 * How a case ended. `pass`: every output matched. `mismatch`: it ran, an output differs.
 * `refused`: the load refused the model (an operator, version or type we do not run).
 * `failed`: the load or run failed otherwise (a bug). `non-tensor`: an input or output is a
 * sequence, optional or map, which the KServe v2 protocol cannot carry, so no client could send
 * or receive it; such cases are counted apart. `no-reference`: a case lifted to a later opset
 * that has no reference there (lifted.ts); not a case at that opset. `faulty-case`: the case's
 * own data contradicts its model or the spec (FAULTY_CASES); counted apart, with the reason.
 */

/**
 * Cases of ONNX 1.12 whose data is wrong, each checked by hand: what the generator did and what
 * the model says. They run like any case (so a fix in a later onnx shows up), but their outcome
 * is reported as faulty-case with this reason.
 */
export const FAULTY_CASES: Readonly<Record<string, string>> = {
  test_castlike_BFLOAT16_to_FLOAT: "input 'like' is declared [3, 4]; the data gives it shape [1] (and as FLOAT, not BFLOAT16)",
  test_castlike_BFLOAT16_to_FLOAT_expanded: "input 'like' is declared [3, 4]; the data gives it shape [1] (and as FLOAT, not BFLOAT16)",
  test_castlike_FLOAT_to_BFLOAT16: "input 'like' is declared [3, 4]; the data gives it shape [1]",
  test_castlike_FLOAT_to_BFLOAT16_expanded: "input 'like' is declared [3, 4]; the data gives it shape [1]",
  test_adam_multiple: 'the expected outputs were computed with epsilon 1e-2, but the node sets no epsilon, so the spec default 1e-6 applies '
    + '(element 0 of X1_new is 0.75913623 with 1e-2, 0.75595931 with 1e-6)',
};
export type Outcome = 'pass' | 'mismatch' | 'refused' | 'failed' | 'non-tensor' | 'no-reference' | 'faulty-case';

export interface CaseResult {
  name: string;
  outcome: Outcome;
  /** Why it did not pass: the first mismatching output, or the error's message. */
  detail: string;
  milliseconds: number;
}

/**
 * ONNX's backend tests compare with numpy.testing.assert_allclose(rtol=1e-3, atol=1e-7); the GPU
 * computes exp, tanh, pow ... in f32 with a few ulps of error, which near zero needs a small
 * absolute slack. Integers and booleans must be exact.
 */
export const CONFORMANCE_TOLERANCE = { relative: 1e-3, absolute: 1e-5 } as const;
/** FP16 and BF16 results are rounded to their 11 / 8 significant bits after f32 arithmetic. */
const HALF_TOLERANCE = { FP16: { relative: 2e-3, absolute: 1e-3 }, BF16: { relative: 1.6e-2, absolute: 1e-2 } } as const;

/** Where generate.sh writes the cases (one directory per case). */
export const CASES_DIR = join(import.meta.dirname, '../../node_modules/.cache/onnx-node-cases/node');

/** Writes the cases into CASES_DIR unless they are there for the installed onnx (a few seconds the first time). */
export function ensureCases(): void {
  execFileSync('bash', [join(import.meta.dirname, 'generate.sh')], { stdio: 'inherit' });
}

/** The case directories under `root` (…/node), sorted. */
export function listCases(root: string): string[] {
  return readdirSync(root, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(root, entry.name, 'model.onnx')))
    .map((entry) => entry.name)
    .sort();
}

function readTensor(path: string): HostTensor {
  return tensorFromProto(TensorProto.decode(readFileSync(path)));
}

/** Whether every input and output of the case's graph is a tensor (what the KServe v2 protocol can carry). */
export function isTensorCase(root: string, name: string): boolean {
  return nonTensorValue(decodeModel(readFileSync(join(root, name, 'model.onnx'))).graph!) === undefined;
}

/** The first graph input or output that is not a tensor, if any. */
function nonTensorValue(graph: GraphProto): ValueInfoProto | undefined {
  return [...graph.input, ...graph.output].find((value) => value.type?.tensorType === undefined);
}

/** The numbered tensors `prefix_N.pb` of a data set, in order. */
function readNumbered(dataSet: string, prefix: 'input' | 'output'): HostTensor[] {
  const tensors: HostTensor[] = [];
  for (let index = 0; existsSync(join(dataSet, `${prefix}_${index}.pb`)); index++) {
    tensors.push(readTensor(join(dataSet, `${prefix}_${index}.pb`)));
  }
  return tensors;
}

/**
 * numpy has no bfloat16, so ONNX's generator writes BFLOAT16 data as UINT16 tensors holding the
 * bf16 bit patterns; the model declares BFLOAT16, which is what a client would send.
 */
function asDeclared(tensor: HostTensor, declaredType: number | undefined): HostTensor {
  if (declaredType === TensorProto_DataType.BFLOAT16 && tensor.datatype === 'UINT16') return { ...tensor, datatype: 'BF16' };
  return tensor;
}

const FLOATING = new Set(['FP32', 'FP64', 'FP16', 'BF16']);

/** Why `got` does not match `want`, or undefined when it does. */
export function difference(got: HostTensor, want: HostTensor): string | undefined {
  if (got.datatype !== want.datatype) return `datatype ${got.datatype}, expected ${want.datatype}`;
  if (got.shape.join() !== want.shape.join()) return `shape [${got.shape}], expected [${want.shape}]`;
  if (!FLOATING.has(want.datatype)) {
    for (let index = 0; index < want.data.length; index++) {
      if (got.data[index] !== want.data[index]) return `element ${index} is ${got.data[index]}, expected ${want.data[index]}`;
    }
    return undefined;
  }
  const tolerance = want.datatype === 'FP16' || want.datatype === 'BF16' ? HALF_TOLERANCE[want.datatype] : CONFORMANCE_TOLERANCE;
  const ours = numberView(got);
  const theirs = numberView(want);
  for (let index = 0; index < theirs.length; index++) {
    const a = ours[index];
    const b = theirs[index];
    if (Number.isNaN(b) ? Number.isNaN(a) : a === b || Math.abs(a - b) <= tolerance.absolute + tolerance.relative * Math.abs(b)) continue;
    return `element ${index} is ${a}, expected ${b}`;
  }
  return undefined;
}

/** The first line of an error, without the stack. */
function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0];
}

function isRefusal(error: unknown): boolean {
  // FAILED_PRECONDITION names an operator, version or type the executor does not run;
  // INVALID_ARGUMENT at load is a model the executor judges malformed.
  return error instanceof NexusError && (error.code === ErrorCode.FAILED_PRECONDITION || error.code === ErrorCode.INVALID_ARGUMENT);
}

export interface RunOptions {
  /** Lift the case to this default-domain opset (lifted.ts); onnxruntime's outputs are the reference. */
  readonly opset?: number;
}

/** Runs one case directory; never throws. */
export async function runCase(gpu: GpuContext, root: string, name: string, options: RunOptions = {}): Promise<CaseResult> {
  const started = performance.now();
  const faulty = FAULTY_CASES[name];
  const result = (outcome: Outcome, detail = ''): CaseResult => (faulty && outcome !== 'pass'
    ? { name, outcome: 'faulty-case', detail: `${faulty} (${outcome}: ${detail})`, milliseconds: performance.now() - started }
    : { name, outcome, detail, milliseconds: performance.now() - started });
  const directory = join(root, name);
  let bytes: Uint8Array = readFileSync(join(directory, 'model.onnx'));
  const graph = decodeModel(bytes).graph!;
  const initializers = new Set(graph.initializer.map((tensor) => tensor.name));
  const inputInfos = graph.input.filter((value) => !initializers.has(value.name));
  const nonTensor = nonTensorValue(graph);
  if (nonTensor) return result('non-tensor', `'${nonTensor.name}' is not a tensor`);

  let inputs: HostTensor[];
  let expected: HostTensor[];
  try {
    const dataSet = join(directory, 'test_data_set_0');
    inputs = readNumbered(dataSet, 'input').map((tensor, index) => asDeclared(tensor, inputInfos[index]?.type?.tensorType?.elemType));
    expected = readNumbered(dataSet, 'output').map((tensor, index) => asDeclared(tensor, graph.output[index]?.type?.tensorType?.elemType));
  } catch (error) {
    // String tensors: KServe v2 carries them as BYTES, our executor computes on numbers only.
    if (options.opset !== undefined) return result('no-reference', `test data: ${messageOf(error)}`);
    return result('refused', `test data: ${messageOf(error)}`);
  }
  const feeds = new Map(inputInfos.map((info, index) => [info.name, inputs[index]]));
  const outputNames = graph.output.map((info) => info.name);
  if (options.opset !== undefined) {
    const reference = await liftedReference(bytes, options.opset, feeds, outputNames, expected);
    if (typeof reference === 'string') return result('no-reference', reference);
    bytes = reference.bytes;
    expected = reference.expected;
  }
  let compiled;
  try {
    compiled = await compileOnnxModel(gpu, bytes, { precision: 'fp32', isolate: false });
  } catch (error) {
    return result(isRefusal(error) ? 'refused' : 'failed', messageOf(error));
  }
  try {
    const { outputs } = await compiled.run(feeds);
    for (const [index, outputName] of outputNames.entries()) {
      const got = outputs.get(outputName);
      if (!got) return result('failed', `output '${outputName}' missing`);
      const why = difference(got, expected[index]);
      if (why) return result('mismatch', `output '${outputName}': ${why}`);
    }
    return result('pass');
  } catch (error) {
    return result(isRefusal(error) ? 'refused' : 'failed', `run: ${messageOf(error)}`);
  } finally {
    compiled.dispose();
  }
}

/**
 * The case lifted to `opset` with onnxruntime's outputs for it, or why it has no reference there:
 * onnxruntime disagrees with numpy at the original opset, or refuses the lifted model.
 */
async function liftedReference(bytes: Uint8Array, opset: number, feeds: ReadonlyMap<string, HostTensor>, outputNames: readonly string[],
  numpyOutputs: readonly HostTensor[]): Promise<{ bytes: Uint8Array; expected: HostTensor[] } | string> {
  const original = await ortOutputs(bytes, feeds, outputNames);
  if (typeof original === 'string') return `at its own opset: ${original}`;
  for (const [index, tensor] of original.entries()) {
    const why = difference(tensor, numpyOutputs[index]);
    if (why) return `onnxruntime disagrees with numpy at the case's own opset (output ${index}: ${why})`;
  }
  const lifted = liftOpset(bytes, opset);
  const expected = await ortOutputs(lifted, feeds, outputNames);
  if (typeof expected === 'string') return `at opset ${opset}: ${expected}`;
  return { bytes: lifted, expected };
}

/** The file listing the cases that do not pass, at their own opsets or lifted to `opset`. */
export function expectedFailuresFile(opset?: number): string {
  return opset === undefined ? 'expected-failures.json' : `expected-failures-opset${opset}.json`;
}

export interface SuiteSummary {
  total: number;
  tensorCases: number;
  passed: number;
  byOutcome: Record<Outcome, number>;
}

export function summarize(results: readonly CaseResult[]): SuiteSummary {
  const byOutcome: Record<Outcome, number> = { pass: 0, mismatch: 0, refused: 0, failed: 0, 'non-tensor': 0, 'no-reference': 0, 'faulty-case': 0 };
  for (const { outcome } of results) byOutcome[outcome]++;
  const apart = byOutcome['non-tensor'] + byOutcome['no-reference'] + byOutcome['faulty-case'];
  return { total: results.length, tensorCases: results.length - apart, passed: byOutcome.pass, byOutcome };
}
