/**
 * The group-kernel normalizations against onnxruntime on fresh random inputs, scales and biases:
 * InstanceNormalization (opsets 6 and 22), GroupNormalization (opset 18's per-group and 21's
 * per-channel scale), MeanVarianceNormalization (opsets 9 and 13, default and chosen axes),
 * RMSNormalization (opset 23), and LayerNormalization with its Mean and InvStdDev outputs (read
 * by a later node too). Odd sizes, groups long enough for a workgroup each, an empty batch, the
 * CPU implementations folding constant inputs, and refusals naming the node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { float, GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { buildOneNodeModel, checkModelAgainstOrt, checkOneNode, compileError, type OutputSpec } from '../numerics/one-node.ts';
import { randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** Values around 3 with a spread of 2: a mean far from 0, which E[x^2] - mean^2 would cancel. */
const offset = (shape: number[]): HostTensor => {
  const tensor = randomTensor(shape, 2);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) data[index] += 3;
  return tensor;
};

interface AffineCase { shape: number[]; attributes?: Record<string, AttributeValue> }

/** A node normalizing x with scale and bias inputs of `affine` shape (fresh random values each run). */
function checkAffine(op: string, { shape, attributes }: AffineCase, affine: number[], opset: number, bias = true) {
  const inputs = [{ name: 'x', shape, fill: offset }, { name: 'scale', shape: affine }, ...(bias ? [{ name: 'bias', shape: affine }] : [])];
  return checkOneNode(gpu, { op, inputs, output: shape, attributes, opset });
}

describe('InstanceNormalization', () => {
  const cases: AffineCase[] = [
    { shape: [2, 3, 5, 7] },
    { shape: [1, 4, 9], attributes: { epsilon: float(0.01) } },
    { shape: [3, 5, 2, 3, 4] },
    // 1023 elements per channel: a workgroup each.
    { shape: [1, 2, 33, 31] },
    { shape: [0, 3, 4, 4] },
  ];
  for (const opset of [6, 22]) {
    for (const testCase of cases) {
      it(`opset ${opset}: [${testCase.shape}] ${JSON.stringify(testCase.attributes ?? {})}`, () => checkAffine('InstanceNormalization', testCase, [testCase.shape[1]], opset));
    }
  }
});

describe('GroupNormalization', () => {
  const cases: Array<AffineCase & { groups: number }> = [
    { shape: [2, 6, 5, 3], groups: 3 },
    { shape: [1, 8, 17], groups: 2, attributes: { epsilon: float(0.001) } },
    { shape: [2, 4, 3, 3], groups: 4 },
    { shape: [3, 5, 2, 2], groups: 1 },
    { shape: [1, 4, 40, 40], groups: 2 },
  ];
  for (const opset of [18, 21]) {
    for (const { shape, groups, attributes } of cases) {
      // Opset 18 scales each group, 21 each channel.
      const affine = [opset >= 21 ? shape[1] : groups];
      it(`opset ${opset}: [${shape}] in ${groups} groups`, () =>
        checkAffine('GroupNormalization', { shape, attributes: { num_groups: groups, ...attributes } }, affine, opset));
    }
  }
  it('refuses a node without num_groups, naming it', async () => {
    const error = await compileError(gpu, buildOneNodeModel({
      op: 'GroupNormalization', inputs: [['x', [1, 4, 3]], ['scale', [4]], ['bias', [4]]], output: [1, 4, 3], opset: 21, nodeName: 'gn_bad',
    }));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("node 'gn_bad' (GroupNormalization) is invalid: GroupNormalization needs the num_groups attribute");
  });
});

describe('MeanVarianceNormalization', () => {
  const cases: AffineCase[] = [
    { shape: [2, 3, 4, 5] },
    { shape: [3, 5, 7], attributes: { axes: [1] } },
    { shape: [2, 3, 4, 5], attributes: { axes: [2, 3] } },
    { shape: [4, 3, 5], attributes: { axes: [0, -1] } },
    { shape: [3, 300], attributes: { axes: [-1] } },
  ];
  for (const opset of [9, 13]) {
    for (const { shape, attributes } of cases) {
      it(`opset ${opset}: [${shape}] ${JSON.stringify(attributes ?? {})}`, () =>
        checkOneNode(gpu, { op: 'MeanVarianceNormalization', inputs: [{ name: 'x', shape, fill: offset }], output: shape, attributes, opset }));
    }
  }
});

describe('RMSNormalization (opset 23)', () => {
  const cases: Array<AffineCase & { scale: number[] }> = [
    { shape: [3, 5, 7], scale: [7] },
    { shape: [2, 3, 4], scale: [3, 4], attributes: { axis: 1 } },
    { shape: [2, 3, 5], scale: [5], attributes: { axis: -2, epsilon: float(0.01) } },
    { shape: [2, 700], scale: [700] },
  ];
  for (const { shape, scale, attributes } of cases) {
    it(`[${shape}] scale [${scale}] ${JSON.stringify(attributes ?? {})}`, () => checkAffine('RMSNormalization', { shape, attributes }, scale, 23, false));
  }
});

describe('LayerNormalization with Mean and InvStdDev', () => {
  const statistics = (shape: number[], axis: number): number[] => shape.map((dim, index) => (index >= (axis + shape.length) % shape.length ? 1 : dim));
  const cases: Array<{ shape: number[]; axis: number; bias: boolean }> = [
    { shape: [3, 5, 8], axis: -1, bias: true },
    { shape: [2, 3, 4, 5], axis: 1, bias: true },
    { shape: [7, 9], axis: -1, bias: false },
    { shape: [2, 600], axis: 1, bias: true },
  ];
  for (const { shape, axis, bias } of cases) {
    it(`[${shape}] axis ${axis}${bias ? '' : ', no bias'}`, () => {
      const affine = shape.slice((axis + shape.length) % shape.length);
      const outputs: OutputSpec[] = [{ name: 'y', shape }, { name: 'mean', shape: statistics(shape, axis) }, { name: 'inv_std', shape: statistics(shape, axis) }];
      return checkOneNode(gpu, {
        op: 'LayerNormalization', inputs: [{ name: 'x', shape, fill: offset }, ['scale', affine], ...(bias ? [['bias', affine] as [string, number[]]] : [])],
        outputs, attributes: { axis }, opset: 17,
      });
    });
  }

  it('only InvStdDev named, and read by the next node', async () => {
    const shape = [4, 6];
    const bytes = new GraphBuilder('layernorm_inv_std').input('x', 'FP32', shape).input('scale', 'FP32', [6])
      .node('LayerNormalization', ['x', 'scale'], ['normalized', '', 'inv_std'], { epsilon: float(0.1) })
      .node('Mul', ['normalized', 'inv_std'], ['y']).output('y', 'FP32', shape).toBytes({ opset: 17 });
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape, fill: offset }, { name: 'scale', shape: [6] }], [{ name: 'y', shape }]);
  });
});

describe('folded on the host', () => {
  const cases: Array<{ op: string; shape: number[]; inputs: Array<[string, number[]]>; attributes?: Record<string, AttributeValue>; opset: number }> = [
    { op: 'InstanceNormalization', shape: [2, 3, 4], inputs: [['scale', [3]], ['bias', [3]]], opset: 13 },
    { op: 'GroupNormalization', shape: [2, 4, 3], inputs: [['scale', [4]], ['bias', [4]]], attributes: { num_groups: 2 }, opset: 21 },
    { op: 'MeanVarianceNormalization', shape: [2, 3, 4, 2], inputs: [], opset: 13 },
    { op: 'RMSNormalization', shape: [3, 5], inputs: [['scale', [5]]], opset: 23 },
    { op: 'LayerNormalization', shape: [3, 5], inputs: [['scale', [5]], ['bias', [5]]], opset: 17 },
  ];
  for (const { op, shape, inputs, attributes, opset } of cases) {
    it(op, async () => {
      const graph = new GraphBuilder(`folded_${op.toLowerCase()}`).input('x', 'FP32', shape).initializer('data', 'FP32', shape, offset(shape).data);
      for (const [name, dims] of inputs) graph.initializer(name, 'FP32', dims, randomTensor(dims).data);
      const bytes = graph.node(op, ['data', ...inputs.map(([name]) => name)], ['folded'], attributes).node('Add', ['x', 'folded'], ['y'])
        .output('y', 'FP32', shape).toBytes({ opset });
      await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape }], [{ name: 'y', shape }]);
    });
  }
});
