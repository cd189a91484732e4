/**
 * The host operators against onnxruntime (CPU) on fresh random inputs: Hardmax at opsets 11
 * (the input coerced to 2-D at axis) and 13 (one axis), every axis, ties; Compress with and
 * without axis, negative axes, short conditions, FP32 / INT64 / BOOL data; EyeLike with k and
 * dtype (FP32, INT64, INT32 outputs; BOOL, which onnxruntime lacks, against its definition); ReverseSequence with batch_axis 0 and 1; Det of
 * single and batched matrices; each once with its input computed on the GPU (read back) and
 * its output read by a GPU node. Then the refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { compileError } from '../numerics/one-node.ts';
import { randomBooleans, randomIntegers, randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

interface Input {
  name: string;
  datatype: Datatype;
  shape: number[];
  fill: () => HostTensor;
}

const floats = (name: string, shape: number[]): Input => ({ name, datatype: 'FP32', shape, fill: () => randomTensor(shape) });

/**
 * One node over graph inputs; `onGpu` passes input 0 through Neg (floats) or Identity first and
 * the output through Identity, so the host node reads a GPU value and a GPU node reads its output.
 */
function oneNode(op: string, inputs: Input[], attributes: Record<string, AttributeValue>, opset: number, outputType: Datatype, onGpu = false): Uint8Array {
  const graph = new GraphBuilder(op.toLowerCase());
  for (const input of inputs) graph.input(input.name, input.datatype, input.shape);
  const names = inputs.map((input) => input.name);
  if (onGpu) {
    graph.node(inputs[0].datatype === 'FP32' ? 'Neg' : 'Identity', [names[0]], ['first_gpu']);
    names[0] = 'first_gpu';
  }
  graph.node(op, names, [onGpu ? 'host_out' : 'y'], attributes, `${op.toLowerCase()}_under_test`);
  if (onGpu) graph.node(outputType === 'FP32' ? 'Neg' : 'Identity', ['host_out'], ['y']);
  graph.output('y', outputType, []);
  return unrankedOutputs(graph, opset);
}

const runsOf = (inputs: Input[], count = 2) => Array.from({ length: count }, () => new Map(inputs.map((input) => [input.name, input.fill()])));

/** Input 0 with whole numbers in [0, 3) so that rows hold ties (Hardmax takes the first). */
const withTies = (shape: number[]): Input => ({
  name: 'x', datatype: 'FP32', shape, fill: () => ({ ...randomTensor(shape), data: Float32Array.from(randomTensor(shape).data as Float32Array, (value) => Math.floor((value + 1) * 1.5)) }),
});

describe('Hardmax', () => {
  const shapes: Array<[shape: number[], axes: number[]]> = [[[7], [0, -1]], [[3, 5], [0, 1, -1]], [[2, 3, 5], [0, 1, 2, -2]], [[2, 3, 2, 5], [1, 3]]];
  for (const opset of [11, 13]) {
    it.each(shapes)(`opset ${opset}: %j on axes %j, and the default axis`, async (shape, axes) => {
      // Before 13 the default axis 1 is out of [-r, r - 1] for a 1-D input.
      for (const axis of opset < 13 && shape.length === 1 ? axes : [undefined, ...axes]) {
        await checkRuns(gpu, oneNode('Hardmax', [floats('x', shape)], axis === undefined ? {} : { axis }, opset, 'FP32'), runsOf([floats('x', shape)]));
      }
    });
  }
  it('ties pick the first largest, at opsets 1, 11 and 13', async () => {
    for (const opset of [1, 11, 13]) await checkRuns(gpu, oneNode('Hardmax', [withTies([3, 4, 6])], { axis: 1 }, opset, 'FP32'), runsOf([withTies([3, 4, 6])]));
  });
  it('input computed on the GPU, output read by a GPU node', async () => {
    const input = floats('x', [3, 4, 5]);
    const readbacks = await checkRuns(gpu, oneNode('Hardmax', [input], { axis: 1 }, 13, 'FP32', true), runsOf([input]));
    expect(readbacks.every((count) => count > 0)).toBe(true);
  });
});

describe('Compress', () => {
  const condition = (length: number): Input => ({ name: 'c', datatype: 'BOOL', shape: [length], fill: () => randomBooleans([length]) });
  const data = (datatype: Datatype, shape: number[]): Input => ({
    name: 'x', datatype, shape,
    fill: () => (datatype === 'FP32' ? randomTensor(shape) : datatype === 'BOOL' ? randomBooleans(shape) : randomIntegers(shape, -50, 50, datatype as 'INT64')),
  });
  const cases: Array<[shape: number[], axis: number | undefined, conditionLength: number]> = [
    [[5, 3], 0, 5], [[5, 3], 1, 3], [[3, 7, 2], -2, 7], [[3, 7, 2], 1, 4], [[4, 5], undefined, 20], [[4, 5], undefined, 9],
  ];
  for (const datatype of ['FP32', 'INT64', 'BOOL'] as const) {
    it.each(cases)(`${datatype} %j along axis %s, condition of %i`, async (shape, axis, length) => {
      const inputs = [data(datatype, shape), condition(length)];
      await checkRuns(gpu, oneNode('Compress', inputs, axis === undefined ? {} : { axis }, 11, datatype), runsOf(inputs));
    });
  }
  it('opset 9, input computed on the GPU, output read by a GPU node', async () => {
    const inputs = [data('FP32', [6, 5]), condition(6)];
    await checkRuns(gpu, oneNode('Compress', inputs, { axis: 0 }, 9, 'FP32', true), runsOf(inputs));
  });
});

describe('EyeLike', () => {
  const cases: Array<[shape: number[], k: number, dtype: Datatype | undefined, input: Datatype]> = [
    [[4, 4], 0, undefined, 'FP32'], [[3, 5], 2, undefined, 'FP32'], [[5, 3], -1, 'INT64', 'FP32'], [[4, 6], -3, 'FP32', 'INT64'],
    [[3, 3], 5, 'INT32', 'FP32'], [[2, 7], 1, 'INT64', 'INT32'], [[6, 4], 0, undefined, 'INT64'],
  ];
  const DTYPE_CODES: Partial<Record<Datatype, number>> = { FP32: 1, INT32: 6, INT64: 7, BOOL: 9 };
  for (const opset of [9, 22]) {
    it.each(cases)(`opset ${opset}: %j with k %i, dtype %s, of a %s input`, async (shape, k, dtype, inputType) => {
      const input: Input = { name: 'x', datatype: inputType, shape, fill: () => (inputType === 'FP32' ? randomTensor(shape) : randomIntegers(shape, -9, 9, inputType as 'INT64')) };
      const attributes = { k, ...(dtype ? { dtype: DTYPE_CODES[dtype]! } : {}) };
      await checkRuns(gpu, oneNode('EyeLike', [input], attributes, opset, dtype ?? inputType), runsOf([input]));
    });
  }
  it('BOOL output (which onnxruntime does not implement): true on the k-th diagonal', async () => {
    const model = await compileOnnxModel(gpu, oneNode('EyeLike', [floats('x', [3, 5])], { k: 2, dtype: 9 }, 13, 'BOOL'), { isolate: false });
    try {
      const { outputs } = await model.run(new Map([['x', randomTensor([3, 5])]]));
      expect(outputs.get('y')!.datatype).toBe('BOOL');
      expect(Array.from(outputs.get('y')!.data as Uint8Array)).toEqual([0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    } finally {
      model.dispose();
    }
  });
  it('of an input computed on the GPU (its shape only), read by a GPU node', async () => {
    await checkRuns(gpu, oneNode('EyeLike', [floats('x', [5, 7])], { k: 1 }, 13, 'FP32', true), runsOf([floats('x', [5, 7])]));
  });
});

describe('ReverseSequence', () => {
  const cases: Array<[shape: number[], batchAxis: number, timeAxis: number]> = [[[4, 3], 1, 0], [[3, 5], 0, 1], [[5, 3, 2], 1, 0], [[3, 6, 2, 3], 0, 1]];
  for (const datatype of ['FP32', 'INT64'] as const) {
    it.each(cases)(`${datatype} %j with batch_axis %i, time_axis %i`, async (shape, batchAxis, timeAxis) => {
      const x: Input = { name: 'x', datatype, shape, fill: () => (datatype === 'FP32' ? randomTensor(shape) : randomIntegers(shape, -99, 99)) };
      const lengths: Input = { name: 'lens', datatype: 'INT64', shape: [shape[batchAxis]], fill: () => randomIntegers([shape[batchAxis]], 0, shape[timeAxis]) };
      await checkRuns(gpu, oneNode('ReverseSequence', [x, lengths], { batch_axis: batchAxis, time_axis: timeAxis }, 10, datatype), runsOf([x, lengths], 3));
    });
  }
  it('input computed on the GPU, output read by a GPU node', async () => {
    const lengths: Input = { name: 'lens', datatype: 'INT64', shape: [3], fill: () => randomIntegers([3], 1, 5) };
    await checkRuns(gpu, oneNode('ReverseSequence', [floats('x', [5, 3, 4]), lengths], {}, 13, 'FP32', true), runsOf([floats('x', [5, 3, 4]), lengths]));
  });
});

describe('Det', () => {
  const shapes = [[1, 1], [2, 2], [3, 3], [5, 5], [3, 4, 4], [2, 3, 7, 7]];
  for (const opset of [11, 22]) {
    it.each(shapes)(`opset ${opset}: %j`, async (...shape) => {
      await checkRuns(gpu, oneNode('Det', [floats('x', shape)], {}, opset, 'FP32'), runsOf([floats('x', shape)]));
    });
  }
  it('a singular matrix has determinant 0', async () => {
    const singular: Input = { name: 'x', datatype: 'FP32', shape: [3, 3], fill: () => ({ datatype: 'FP32', shape: [3, 3], data: Float32Array.of(1, 2, 3, 2, 4, 6, 0, 1, 5) }) };
    await checkRuns(gpu, oneNode('Det', [singular], {}, 13, 'FP32'), runsOf([singular], 1));
  });
  it('input computed on the GPU, output read by a GPU node', async () => {
    await checkRuns(gpu, oneNode('Det', [floats('x', [4, 3, 3])], {}, 13, 'FP32', true), runsOf([floats('x', [4, 3, 3])]));
  });
});

describe('refusals', () => {
  const refusal = async (bytes: Uint8Array, detail: string) => {
    const error = await compileError(gpu, bytes);
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain(detail);
  };
  const integers = (shape: number[]): Input => ({ name: 'x', datatype: 'INT64', shape, fill: () => randomIntegers(shape, 0, 9) });
  it('Hardmax and Det of integers', async () => {
    await refusal(oneNode('Hardmax', [integers([3, 4])], {}, 13, 'INT64'), "operator 'Hardmax' (node 'hardmax_under_test') is not supported with INT64 input (floats only)");
    await refusal(oneNode('Det', [integers([3, 3])], {}, 13, 'INT64'), "operator 'Det' (node 'det_under_test') is not supported with INT64 input (floats only)");
  });
  it('Compress with a non-BOOL condition, ReverseSequence with equal axes', async () => {
    const indices: Input = { name: 'c', datatype: 'INT64', shape: [3], fill: () => randomIntegers([3], 0, 1) };
    await refusal(oneNode('Compress', [floats('x', [3, 2]), indices], { axis: 0 }, 11, 'FP32'), 'its condition must be BOOL, got INT64');
    const lengths: Input = { name: 'lens', datatype: 'INT64', shape: [3], fill: () => randomIntegers([3], 0, 3) };
    await refusal(oneNode('ReverseSequence', [floats('x', [3, 3]), lengths], { batch_axis: 1, time_axis: 1 }, 10, 'FP32'), 'batch_axis 1 and time_axis 1 must be 0 and 1, one each');
  });
  it('each below its first version', async () => {
    await refusal(oneNode('Det', [floats('x', [2, 2])], {}, 10, 'FP32'), 'ONNX defines it from opset 11');
    await refusal(oneNode('EyeLike', [floats('x', [2, 2])], {}, 8, 'FP32'), 'ONNX defines it from opset 9');
  });
});
