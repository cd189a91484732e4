/**
 * BatchNormalization beyond constant statistics, against onnxruntime (CPU) on fresh random inputs:
 * scale, B, mean and var given in the request or computed on the GPU (read on the host, folded
 * per plan; a new plan for new values), some constant and some not, with a fused Relu, in fp32
 * and in fp16 storage, at opsets 9, 14 and 15; and training_mode=1 (14, 15): the batch's own
 * statistics, running_mean / running_var with momentum, inputs computed on the GPU.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { compileError } from '../numerics/one-node.ts';
import { expectClose, expectCloseFp16, randomTensor, runOrt } from '../numerics/ort-reference.ts';
import { checkRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const STATISTICS = ['scale', 'bias', 'mean', 'var'] as const;
type Statistic = (typeof STATISTICS)[number];

/** Fresh per-channel values; var positive. */
function statistic(name: Statistic, channels: number): HostTensor {
  const tensor = randomTensor([channels]);
  return name === 'var' ? { ...tensor, data: (tensor.data as Float32Array).map((value) => 0.2 + Math.abs(value)) } : tensor;
}

interface BatchNormGraph {
  shape: number[];
  opset: number;
  /** Statistics that are initializers (fresh values per model); the others are graph inputs. */
  constant?: Statistic[];
  /** The statistics in the request pass through a GPU node (Abs for var, Identity otherwise). */
  onGpu?: boolean;
  relu?: boolean;
  attributes?: Record<string, AttributeValue>;
  /** training_mode=1 outputs: ['y', 'running_mean', 'running_var'], '' for one left unnamed. */
  outputs?: string[];
  /** The node outputs that are graph outputs (default: every named one). */
  graphOutputs?: string[];
}

function batchNormModel({ shape, opset, constant = [], onGpu, relu, attributes = {}, outputs = ['y'], graphOutputs }: BatchNormGraph): Uint8Array {
  const channels = shape[1];
  const graph = new GraphBuilder('batchnorm').input('x', 'FP32', shape);
  const names = STATISTICS.map((name) => {
    if (constant.includes(name)) {
      graph.initializer(name, 'FP32', [channels], statistic(name, channels).data);
      return name;
    }
    graph.input(name, 'FP32', [channels]);
    if (!onGpu) return name;
    graph.node(name === 'var' ? 'Abs' : 'Neg', [name], [`${name}_gpu`]);
    return `${name}_gpu`;
  });
  const [first, ...rest] = outputs;
  graph.node('BatchNormalization', ['x', ...names], [relu ? 'normalized' : first, ...rest], attributes, 'bn_under_test');
  if (relu) graph.node('Relu', ['normalized'], [first]);
  for (const output of graphOutputs ?? outputs) if (output) graph.output(output, 'FP32', []);
  return unrankedOutputs(graph, opset);
}

function feeds(testCase: BatchNormGraph): Map<string, HostTensor> {
  const inputs = new Map<string, HostTensor>([['x', randomTensor(testCase.shape, 2)]]);
  for (const name of STATISTICS) if (!testCase.constant?.includes(name)) inputs.set(name, statistic(name, testCase.shape[1]));
  return inputs;
}

const runs = (testCase: BatchNormGraph) => [feeds(testCase), feeds(testCase), feeds(testCase)];

describe('BatchNormalization with statistics given at run time', () => {
  const shapes = [[2, 3, 4, 5], [5, 7], [1, 6, 9], [3, 5, 2, 3, 2]];
  for (const opset of [9, 14, 15]) {
    it.each(shapes)(`opset ${opset}: x of %j, every statistic in the request`, async (...shape) => {
      await checkRuns(gpu, batchNormModel({ shape, opset, attributes: { epsilon: 1e-3 } }), runs({ shape, opset }));
    });
  }
  it('computed on the GPU (read back before the step)', async () => {
    const testCase: BatchNormGraph = { shape: [2, 5, 3, 3], opset: 15, onGpu: true };
    const readbacks = await checkRuns(gpu, batchNormModel(testCase), runs(testCase));
    expect(readbacks.every((count) => count > 0)).toBe(true);
  });
  it('some constant, some in the request, with a fused Relu', async () => {
    const testCase: BatchNormGraph = { shape: [3, 4, 7], opset: 15, constant: ['scale', 'var'], relu: true };
    await checkRuns(gpu, batchNormModel(testCase), runs(testCase));
  });
  it('in fp16 storage (the per-plan tables hold halves)', async () => {
    const testCase: BatchNormGraph = { shape: [2, 5, 6, 3], opset: 15 };
    const bytes = batchNormModel(testCase);
    const model = await compileOnnxModel(gpu, bytes, { precision: 'fp16', isolate: false });
    try {
      for (const inputs of runs(testCase)) {
        const [ours, reference] = await Promise.all([model.run(inputs), runOrt(bytes, inputs)]);
        expectCloseFp16('y', ours.outputs.get('y'), reference.get('y')!);
      }
    } finally {
      model.dispose();
    }
  });
});

describe('BatchNormalization training_mode=1', () => {
  const shapes = [[2, 3, 4], [4, 5, 3, 3], [6, 2], [3, 4, 2, 3, 2]];
  for (const opset of [14, 15]) {
    it.each(shapes)(`opset ${opset}: x of %j, Y and both running statistics`, async (...shape) => {
      const testCase: BatchNormGraph = { shape, opset, attributes: { training_mode: 1, momentum: 0.8, epsilon: 1e-4 }, outputs: ['y', 'running_mean', 'running_var'] };
      await checkRuns(gpu, batchNormModel(testCase), runs(testCase));
    });
  }
  it('Y alone, default momentum and epsilon, inputs computed on the GPU, output read by a GPU node', async () => {
    const outputs = ['y', 'running_mean', 'running_var'];
    const testCase: BatchNormGraph = { shape: [3, 4, 5], opset: 15, onGpu: true, relu: true, attributes: { training_mode: 1 }, outputs, graphOutputs: ['y'] };
    await checkRuns(gpu, batchNormModel(testCase), runs(testCase));
  });
  it('running statistics left unnamed (onnxruntime crashes on that model: compared with it fully named)', async () => {
    const testCase: BatchNormGraph = { shape: [5, 3, 2], opset: 14, attributes: { training_mode: 1 }, outputs: ['y', '', 'running_var'] };
    const model = await compileOnnxModel(gpu, batchNormModel(testCase), { isolate: false });
    try {
      const named = batchNormModel({ ...testCase, outputs: ['y', 'running_mean', 'running_var'], graphOutputs: ['y', 'running_var'] });
      for (const inputs of runs(testCase)) {
        const [ours, reference] = await Promise.all([model.run(inputs), runOrt(named, inputs)]);
        expect([...ours.outputs.keys()].sort()).toEqual(['running_var', 'y']);
        for (const name of ['y', 'running_var']) expectClose(name, ours.outputs.get(name), reference.get(name)!);
      }
    } finally {
      model.dispose();
    }
  });
  it('with fewer than its three outputs is refused at load', async () => {
    const error = await compileError(gpu, batchNormModel({ shape: [2, 3], opset: 15, attributes: { training_mode: 1 }, outputs: ['y'] }));
    expect(error.message).toContain("node 'bn_under_test'");
    expect(error.message).toContain('has 1 outputs, expected 3');
  });
});
