/**
 * NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss against onnxruntime (CPU) on fresh random
 * inputs: every reduction, with and without weights and ignore_index (some targets set to it),
 * inputs [N, C] to [N, C, d1, d2, d3], INT64 and INT32 targets, opsets 12, 13 and 22 (NLL),
 * SoftmaxCrossEntropyLoss with its log_prob output, inputs from the request and computed on the
 * GPU (read back); then the refusals and the INVALID_ARGUMENT of a target that is no class.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { compileError } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

type Loss = 'NegativeLogLikelihoodLoss' | 'SoftmaxCrossEntropyLoss';

interface LossCase {
  shape: number[];
  reduction: 'none' | 'sum' | 'mean';
  weighted: boolean;
  /** A class index (or a value outside [0, C)) some targets are set to, ignored. */
  ignoreIndex?: number;
  targetType?: 'INT64' | 'INT32';
}

/** Targets in [0, C), about a quarter of them set to ignoreIndex when there is one. */
function targets({ shape, ignoreIndex, targetType = 'INT64' }: LossCase): HostTensor {
  const targetShape = [shape[0], ...shape.slice(2)];
  const tensor = randomIntegers(targetShape, 0, shape[1] - 1, targetType);
  if (ignoreIndex !== undefined) {
    for (let index = 0; index < tensor.data.length; index++) {
      if (Math.random() < 0.25) tensor.data[index] = targetType === 'INT64' ? BigInt(ignoreIndex) : ignoreIndex;
    }
  }
  return tensor;
}

/**
 * The loss node over graph inputs x, t and (weighted) w. `onGpu`: x and w pass through GPU nodes
 * first, so the host operator reads them back.
 */
function lossModel(op: Loss, testCase: LossCase, opset: number, onGpu: boolean, logProb = false): Uint8Array {
  const { shape, reduction, weighted, ignoreIndex, targetType = 'INT64' } = testCase;
  const graph = new GraphBuilder('loss').input('x', 'FP32', shape).input('t', targetType, [shape[0], ...shape.slice(2)]);
  if (weighted) graph.input('w', 'FP32', [shape[1]]);
  const [x, w] = onGpu ? ['x_gpu', 'w_gpu'] : ['x', 'w'];
  if (onGpu) {
    graph.node('Neg', ['x'], ['x_gpu']);
    if (weighted) graph.node('Abs', ['w'], ['w_gpu']);
  }
  const attributes = { reduction, ...(ignoreIndex !== undefined ? { ignore_index: ignoreIndex } : {}) };
  const outputs = logProb ? ['loss', 'log_prob'] : ['loss'];
  graph.node(op, weighted ? [x, 't', w] : [x, 't'], outputs, attributes, 'loss_under_test');
  for (const output of outputs) graph.output(output, 'FP32', []);
  return unrankedOutputs(graph, opset);
}

function feeds(testCase: LossCase): Map<string, HostTensor> {
  const inputs = new Map<string, HostTensor>([['x', randomTensor(testCase.shape, 3)], ['t', targets(testCase)]]);
  if (testCase.weighted) inputs.set('w', { ...randomTensor([testCase.shape[1]]), data: Float32Array.from({ length: testCase.shape[1] }, () => 0.1 + Math.random()) });
  return inputs;
}

const CASES: LossCase[] = [
  { shape: [5, 7], reduction: 'mean', weighted: false },
  { shape: [5, 7], reduction: 'sum', weighted: true },
  { shape: [3, 6, 5], reduction: 'none', weighted: false },
  { shape: [3, 6, 5], reduction: 'mean', weighted: true },
  { shape: [3, 6, 5], reduction: 'mean', weighted: false, ignoreIndex: 2 },
  { shape: [4, 3, 5, 3], reduction: 'mean', weighted: true, ignoreIndex: -1 },
  { shape: [4, 3, 5, 3], reduction: 'sum', weighted: false, ignoreIndex: 9, targetType: 'INT32' },
  { shape: [2, 5, 3, 2, 3], reduction: 'none', weighted: true, ignoreIndex: 1 },
  { shape: [2, 5, 3, 2, 3], reduction: 'mean', weighted: false },
];

const runs = (testCase: LossCase) => [feeds(testCase), feeds(testCase)];

describe('NegativeLogLikelihoodLoss', () => {
  it.each(CASES)('%j at opsets 12, 13 and 22', async (testCase) => {
    for (const opset of [12, 13, 22]) await checkRuns(gpu, lossModel('NegativeLogLikelihoodLoss', testCase, opset, false), runs(testCase));
  });
  it.each(CASES.slice(3, 6))('%j with inputs computed on the GPU (read back)', async (testCase) => {
    const readbacks = await checkRuns(gpu, lossModel('NegativeLogLikelihoodLoss', testCase, 13, true), runs(testCase));
    expect(readbacks.every((count) => count > 0)).toBe(true);
  });
});

describe('SoftmaxCrossEntropyLoss', () => {
  it.each(CASES)('%j at opsets 12 and 13, with and without log_prob', async (testCase) => {
    for (const opset of [12, 13]) {
      for (const logProb of [false, true]) await checkRuns(gpu, lossModel('SoftmaxCrossEntropyLoss', testCase, opset, false, logProb), runs(testCase));
    }
  });
  it.each(CASES.slice(2, 5))('%j with inputs computed on the GPU (read back), log_prob read by a GPU node', async (testCase) => {
    const { shape } = testCase;
    const graph = new GraphBuilder('sce_gpu').input('x', 'FP32', shape).input('t', 'INT64', [shape[0], ...shape.slice(2)]);
    if (testCase.weighted) graph.input('w', 'FP32', [shape[1]]);
    graph.node('Relu', ['x'], ['x_gpu'])
      .node('SoftmaxCrossEntropyLoss', testCase.weighted ? ['x_gpu', 't', 'w'] : ['x_gpu', 't'], ['loss', 'log_prob'], { reduction: testCase.reduction, ...(testCase.ignoreIndex !== undefined ? { ignore_index: testCase.ignoreIndex } : {}) })
      .node('Exp', ['log_prob'], ['prob']).output('loss', 'FP32', []).output('prob', 'FP32', []);
    await checkRuns(gpu, unrankedOutputs(graph, 13), runs(testCase));
  });
});

describe('refusals', () => {
  it('an integer input is refused at load', async () => {
    const graph = new GraphBuilder('nll_int').input('x', 'INT32', [3, 4]).input('t', 'INT64', [3])
      .node('NegativeLogLikelihoodLoss', ['x', 't'], ['loss'], {}, 'nll_int').output('loss', 'INT32', []);
    const error = await compileError(gpu, graph.toBytes({ opset: 13 }));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("operator 'NegativeLogLikelihoodLoss' (node 'nll_int') is not supported with INT32 input (floats only)");
  });
  it('a reduction ONNX does not define is refused at load', async () => {
    const error = await compileError(gpu, lossModel('SoftmaxCrossEntropyLoss', { shape: [3, 4], reduction: 'max' as 'sum', weighted: false }, 13, false));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("reduction='max'");
  });
  it('a target that is neither a class nor ignore_index is INVALID_ARGUMENT naming it', async () => {
    const testCase: LossCase = { shape: [3, 4], reduction: 'mean', weighted: false, ignoreIndex: -1 };
    const model = await compileOnnxModel(gpu, lossModel('NegativeLogLikelihoodLoss', testCase, 13, false), { isolate: false });
    try {
      const inputs = new Map([['x', randomTensor([3, 4])], ['t', { datatype: 'INT64', shape: [3], data: BigInt64Array.of(0n, 4n, -1n) } as HostTensor]]);
      const error = await model.run(inputs).then(() => undefined, (thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(NexusError);
      expect((error as NexusError).code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect((error as NexusError).message).toContain('target 4 at index 1 is not a class in [0, 4) nor ignore_index');
    } finally {
      model.dispose();
    }
  });
});
