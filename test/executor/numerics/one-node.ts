/**
 * One-node ONNX models built in code and checked against onnxruntime on fresh inputs, shared by
 * the per-operator numerics tests.
 */
import { expect } from 'vitest';
import type { GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { expectMatchesOrt, randomTensor } from './ort-reference.ts';

/** A graph input: FP32 uniform in [-scale, scale) unless `fill` makes its values. */
export interface InputSpec {
  name: string;
  shape: number[];
  datatype?: Datatype;
  /** Fresh values on every call (defaults to randomTensor(shape, scale)). */
  fill?: (shape: number[]) => HostTensor;
}

export interface OutputSpec {
  name: string;
  shape: number[];
  datatype?: Datatype;
}

export interface OneNodeCase {
  op: string;
  /** `[name, shape]` for an FP32 input, or a full spec. */
  inputs: Array<[name: string, shape: number[]] | InputSpec>;
  /** The shape of the single FP32 output 'y'; ORT must agree. */
  output?: number[];
  /** Several or non-FP32 outputs (instead of `output`). */
  outputs?: OutputSpec[];
  attributes?: Record<string, AttributeValue>;
  /** Node inputs when they differ from the graph inputs (initializers, '' for omitted optionals). */
  nodeInputs?: string[];
  initializers?: Array<{ name: string; tensor: HostTensor }>;
  opset?: number;
  /** Inputs without `fill` are uniform in [-scale, scale). Default 1. */
  scale?: number;
  /** The node's name (refusals name it). */
  nodeName?: string;
}

/** An INT64 tensor; pass bigint for values beyond 2^53 (INT64_MAX as Slice's open end). */
export const int64 = (values: Array<number | bigint>, shape = [values.length]): HostTensor =>
  ({ datatype: 'INT64', shape, data: BigInt64Array.from(values, (value) => BigInt(value)) });
export const fp32 = (values: number[], shape = [values.length]): HostTensor =>
  ({ datatype: 'FP32', shape, data: Float32Array.from(values) });

function inputSpecs(testCase: OneNodeCase): InputSpec[] {
  return testCase.inputs.map((input) => (Array.isArray(input) ? { name: input[0], shape: input[1] } : input));
}

function outputSpecs(testCase: OneNodeCase): OutputSpec[] {
  return testCase.outputs ?? [{ name: 'y', shape: testCase.output ?? [] }];
}

export function buildOneNodeModel(testCase: OneNodeCase): Uint8Array {
  const graph = new GraphBuilder(testCase.op.toLowerCase());
  const inputs = inputSpecs(testCase);
  for (const input of inputs) graph.input(input.name, input.datatype ?? 'FP32', input.shape);
  for (const { name, tensor } of testCase.initializers ?? []) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
  const outputs = outputSpecs(testCase);
  graph.node(testCase.op, testCase.nodeInputs ?? inputs.map((input) => input.name), outputs.map((output) => output.name), testCase.attributes,
    testCase.nodeName ?? `${testCase.op.toLowerCase()}_under_test`);
  for (const output of outputs) graph.output(output.name, output.datatype ?? 'FP32', output.shape);
  return graph.toBytes({ opset: testCase.opset ?? 17 });
}

export function freshInputs(specs: readonly InputSpec[], scale = 1): Map<string, HostTensor> {
  return new Map(specs.map((spec) => [spec.name, spec.fill ? spec.fill(spec.shape) : randomTensor(spec.shape, scale)]));
}

/**
 * Compiles `bytes` and checks two runs with different fresh inputs (the second reuses the plan).
 * Models built here are trusted, so they compile on this thread (isolate: false) without a worker
 * per case; mlp.test.ts and models.test.ts keep the isolated compile the service uses.
 */
export async function checkModelAgainstOrt(
  gpu: GpuContext, bytes: Uint8Array, inputs: readonly InputSpec[], outputs: readonly OutputSpec[], scale = 1,
): Promise<void> {
  const model = await compileOnnxModel(gpu, bytes, { isolate: false });
  try {
    for (let round = 0; round < 2; round++) {
      const ours = await expectMatchesOrt(model, bytes, freshInputs(inputs, scale));
      for (const output of outputs) expect(ours.get(output.name)!.shape, `shape of '${output.name}'`).toEqual(output.shape);
    }
  } finally {
    model.dispose();
  }
}

export function checkOneNode(gpu: GpuContext, testCase: OneNodeCase): Promise<void> {
  return checkModelAgainstOrt(gpu, buildOneNodeModel(testCase), inputSpecs(testCase), outputSpecs(testCase), testCase.scale);
}

/** The error compileOnnxModel rejects with (the test fails if it compiles). */
export async function compileError(gpu: GpuContext, bytes: Uint8Array): Promise<NexusError> {
  const error = await compileOnnxModel(gpu, bytes, { isolate: false }).then((model) => { model.dispose(); return undefined; }, (thrown: unknown) => thrown);
  expect(error).toBeInstanceOf(NexusError);
  return error as NexusError;
}

/** Asserts that compiling `testCase` fails with FAILED_PRECONDITION naming its operator and node. */
export async function expectRefused(gpu: GpuContext, testCase: OneNodeCase, detail: string): Promise<void> {
  const error = await compileError(gpu, buildOneNodeModel(testCase));
  expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
  const nodeName = testCase.nodeName ?? `${testCase.op.toLowerCase()}_under_test`;
  expect(error.message).toContain(`operator '${testCase.op}' (node '${nodeName}') is not supported`);
  expect(error.message).toContain(detail);
}
