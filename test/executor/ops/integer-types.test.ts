/**
 * Element-wise operators and MaxPool on every integer type their opsets list, against
 * onnxruntime on fresh random values: Clip (default and given bounds), Relu, Abs, Neg, Sign, Max,
 * Min, Shrink, PRelu (16), Pow with integer bases and integer or float exponents (exact integer powers),
 * MaxPool on INT8 / UINT8. The graph takes INT32, casts to the type under test, runs the node and
 * casts back, since onnxruntime-node feeds none of the narrow types. Where onnxruntime's CPU
 * provider has no kernel for a type, the reference is the same graph in INT32 (the values stay in
 * range of every type, so the results are the same numbers). Refusals of what stays refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import { onnxCodeOf } from '../../../services/onnx/datatypes.ts';
import { float, GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { expectClose, runOrt } from '../numerics/ort-reference.ts';
import { compileError } from '../numerics/one-node.ts';
import { unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const SIGNED: Datatype[] = ['INT8', 'INT16', 'INT32', 'INT64'];
const UNSIGNED: Datatype[] = ['UINT8', 'UINT16', 'UINT32', 'UINT64'];
const ALL_INTEGERS = [...SIGNED, ...UNSIGNED];

/** An operand: its shape, the range of its random integers, and FP32 instead of the tested type. */
interface Operand { shape: number[]; low: number; high: number; float?: readonly number[] }

function int32Tensor(shape: number[], low: number, high: number): HostTensor {
  const count = shape.reduce((a, b) => a * b, 1);
  return { datatype: 'INT32', shape, data: Int32Array.from({ length: count }, () => low + Math.floor(Math.random() * (high - low + 1))) };
}

function floatTensor(shape: number[], choices: readonly number[]): HostTensor {
  const count = shape.reduce((a, b) => a * b, 1);
  return { datatype: 'FP32', shape, data: Float32Array.from({ length: count }, () => choices[Math.floor(Math.random() * choices.length)]) };
}

/** INT32 inputs cast to `datatype` (FP32 operands as they are), `op`, and a cast of its output back to INT32. */
function castWrapped(op: string, datatype: Datatype, operands: Operand[], attributes: Record<string, AttributeValue>, opset: number, constants: HostTensor[] = []): Uint8Array {
  const graph = new GraphBuilder(`${op.toLowerCase()}_${datatype.toLowerCase()}`);
  const nodeInputs: string[] = [];
  operands.forEach((operand, index) => {
    graph.input(`x${index}`, operand.float ? 'FP32' : 'INT32', operand.shape);
    if (operand.float) {
      nodeInputs.push(`x${index}`);
    } else {
      graph.node('Cast', [`x${index}`], [`t${index}`], { to: onnxCodeOf(datatype) });
      nodeInputs.push(`t${index}`);
    }
  });
  constants.forEach((tensor, index) => {
    graph.initializer(`c${index}`, tensor.datatype, tensor.shape, tensor.data);
    nodeInputs.push(`c${index}`);
  });
  graph.node(op, nodeInputs, ['r'], attributes, `${op.toLowerCase()}_under_test`).node('Cast', ['r'], ['y'], { to: onnxCodeOf('INT32') })
    .output('y', 'INT32', []);
  return unrankedOutputs(graph, opset);
}

/** onnxruntime's answer, or its answer for the INT32 twin where it has no kernel for the type. */
async function reference(bytes: Uint8Array, twin: () => Uint8Array, inputs: Map<string, HostTensor>): Promise<HostTensor> {
  const result = await runOrt(bytes, inputs).catch(async (error: unknown) => {
    if (!/NOT_IMPLEMENTED|Could not find an implementation/.test(String(error))) throw error;
    return runOrt(twin(), inputs);
  });
  return result.get('y')!;
}

async function integerCase(op: string, datatype: Datatype, operands: Operand[], attributes: Record<string, AttributeValue> = {}, opset = 17, constants: (type: Datatype) => HostTensor[] = () => []): Promise<void> {
  const bytes = castWrapped(op, datatype, operands, attributes, opset, constants(datatype));
  const model = await compileOnnxModel(gpu, bytes, { isolate: false });
  try {
    for (let round = 0; round < 2; round++) {
      const inputs = new Map(operands.map((operand, index) => [
        `x${index}`, operand.float ? floatTensor(operand.shape, operand.float) : int32Tensor(operand.shape, operand.low, operand.high),
      ]));
      const [ours, expected] = await Promise.all([
        model.run(inputs), reference(bytes, () => castWrapped(op, 'INT32', operands, attributes, opset, constants('INT32')), inputs),
      ]);
      expectClose('y', ours.outputs.get('y'), expected);
    }
  } finally {
    model.dispose();
  }
}

const rangeOf = (datatype: Datatype) => (UNSIGNED.includes(datatype) ? { low: 0, high: 120 } : { low: -120, high: 120 });
/** A scalar constant of an integer datatype. */
function typed(datatype: Datatype, value: number): HostTensor {
  const arrays = { INT8: Int8Array, UINT8: Uint8Array, INT16: Int16Array, UINT16: Uint16Array, INT32: Int32Array, UINT32: Uint32Array } as const;
  if (datatype === 'INT64') return { datatype, shape: [], data: BigInt64Array.of(BigInt(value)) };
  if (datatype === 'UINT64') return { datatype, shape: [], data: BigUint64Array.of(BigInt(value)) };
  return { datatype, shape: [], data: arrays[datatype as keyof typeof arrays].of(value) };
}

describe('Clip on integers (opset 13: every integer type)', () => {
  it.each(ALL_INTEGERS)('%s with default bounds', (datatype) => integerCase('Clip', datatype, [{ shape: [3, 37], ...rangeOf(datatype) }]));
  it.each(ALL_INTEGERS)('%s with min and max inputs', (datatype) => integerCase('Clip', datatype, [{ shape: [5, 13], ...rangeOf(datatype) }], {}, 17,
    (type) => [typed(type, UNSIGNED.includes(datatype) ? 20 : -30), typed(type, 77)]));
});

describe('unary and binary integer maths', () => {
  it.each(['INT8', 'INT16', 'INT32', 'INT64'] as Datatype[])('Relu, Neg on %s', async (datatype) => {
    await integerCase('Relu', datatype, [{ shape: [61], ...rangeOf(datatype) }]);
    await integerCase('Neg', datatype, [{ shape: [2, 29], ...rangeOf(datatype) }]);
  });
  it.each(ALL_INTEGERS)('Abs, Sign on %s', async (datatype) => {
    await integerCase('Abs', datatype, [{ shape: [3, 19], ...rangeOf(datatype) }]);
    await integerCase('Sign', datatype, [{ shape: [43], ...rangeOf(datatype) }]);
  });
  it.each(ALL_INTEGERS)('Max, Min (variadic, broadcasting) on %s', async (datatype) => {
    const operands = [{ shape: [3, 1, 7], ...rangeOf(datatype) }, { shape: [5, 1], ...rangeOf(datatype) }, { shape: [7], ...rangeOf(datatype) }];
    await integerCase('Max', datatype, operands);
    await integerCase('Min', datatype, operands);
  });
  it.each(ALL_INTEGERS)('Shrink on %s (float maths, truncated back)', (datatype) =>
    integerCase('Shrink', datatype, [{ shape: [4, 21], ...rangeOf(datatype) }], { lambd: float(30.5), bias: float(7.5) }));
  it.each(['INT32', 'INT64'] as Datatype[])('PRelu on %s (opset 16)', (datatype) =>
    integerCase('PRelu', datatype, [{ shape: [2, 3, 9], low: -50, high: 50 }, { shape: [3, 1], low: -3, high: 3 }], {}, 16));
});

describe('Pow with integer bases', () => {
  it.each(['INT32', 'INT64'] as Datatype[])('%s ^ integer exponents, exact', (datatype) =>
    integerCase('Pow', datatype, [{ shape: [4, 23], low: -9, high: 9 }, { shape: [23], low: 0, high: 9 }]));
  it.each(['INT32', 'INT64'] as Datatype[])('%s ^ FLOAT exponents (integral ones exact, others truncated)', (datatype) =>
    integerCase('Pow', datatype, [{ shape: [3, 17], low: 0, high: 12 }, { shape: [17], low: 0, high: 0, float: [0, 1, 2, 3, 4, 5, 0.5, 1.7, 2.3] }]));
  it('INT32 results past 2^24 stay exact (f32 pow would round them)', () =>
    integerCase('Pow', 'INT32', [{ shape: [31], low: 3, high: 3 }, { shape: [31], low: 15, high: 19 }]));
});

describe('MaxPool on INT8 and UINT8 (opset 12)', () => {
  it.each(['INT8', 'UINT8'] as Datatype[])('%s 2-D with pads and strides', (datatype) =>
    integerCase('MaxPool', datatype, [{ shape: [2, 3, 9, 11], ...rangeOf(datatype) }], { kernel_shape: [3, 2], strides: [2, 2], pads: [1, 0, 1, 1] }, 12));
  it.each(['INT8', 'UINT8'] as Datatype[])('%s 3-D', (datatype) =>
    integerCase('MaxPool', datatype, [{ shape: [1, 2, 5, 6, 7], ...rangeOf(datatype) }], { kernel_shape: [2, 3, 2] }, 12));
  it('INT32 and opset-11 INT8 are refused, naming the type', async () => {
    for (const [datatype, opset, detail] of [['INT32', 12, 'INT32 input (floats, INT8 and UINT8)'], ['INT8', 11, 'INT8 input, which MaxPool takes from opset 12']] as const) {
      const error = await compileError(gpu, castWrapped('MaxPool', datatype, [{ shape: [1, 1, 4, 4], low: 0, high: 9 }], { kernel_shape: [2, 2] }, opset));
      expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
      expect(error.message).toContain(`operator 'MaxPool' (node 'maxpool_under_test') is not supported with ${detail}`);
    }
  });
});

describe('integer inputs that stay refused', () => {
  it('Clip on BOOL and AveragePool on INT8', async () => {
    const bool = await compileError(gpu, castWrapped('Clip', 'BOOL', [{ shape: [4], low: 0, high: 1 }], {}, 13));
    expect(bool.message).toContain("operator 'Clip' (node 'clip_under_test') is not supported with BOOL input");
    const average = await compileError(gpu, castWrapped('AveragePool', 'INT8', [{ shape: [1, 1, 4, 4], low: 0, high: 9 }], { kernel_shape: [2, 2] }, 13));
    expect(average.message).toContain('INT8 input (floats only)');
  });
});
