/**
 * LRN against onnxruntime on fresh random inputs: odd window sizes, windows wider than the
 * channel count, attributes other than the defaults, an empty batch, opsets 12 and 13, and the
 * CPU implementation folding a constant input. onnxruntime's CPU LRN takes only 4-D inputs and
 * odd sizes, so even sizes and other ranks (which ONNX defines) are checked against the ONNX
 * formula written out here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { float, GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { buildOneNodeModel, checkModelAgainstOrt, checkOneNode, compileError } from '../numerics/one-node.ts';
import { expectClose, randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const number = (value: AttributeValue | undefined, fallback: number) =>
  (value === undefined ? fallback : typeof value === 'number' ? value : (value as { value: number }).value);

/** ONNX's definition: the squares of channels c - floor((size - 1) / 2) to c + ceil((size - 1) / 2). */
function lrnFormula(x: HostTensor, attributes: Record<string, AttributeValue>): HostTensor {
  const size = number(attributes.size, 0);
  const [alpha, beta, bias] = [number(attributes.alpha, 1e-4), number(attributes.beta, 0.75), number(attributes.bias, 1)];
  const [channels, plane] = [x.shape[1], x.shape.slice(2).reduce((total, dim) => total * dim, 1)];
  const values = x.data as Float32Array;
  const y = new Float32Array(values.length);
  for (let index = 0; index < values.length; index++) {
    const [sample, channel, position] = [Math.floor(index / (channels * plane)), Math.floor(index / plane) % channels, index % plane];
    let sum = 0;
    for (let j = channel - Math.floor((size - 1) / 2); j <= channel + Math.ceil((size - 1) / 2); j++) {
      if (j >= 0 && j < channels) sum += values[(sample * channels + j) * plane + position] ** 2;
    }
    y[index] = values[index] / (bias + alpha / size * sum) ** beta;
  }
  return { datatype: 'FP32', shape: x.shape, data: y };
}

interface LrnCase { shape: number[]; attributes: Record<string, AttributeValue> }

const CASES: LrnCase[] = [
  { shape: [1, 3, 5, 7], attributes: { size: 3 } },
  { shape: [2, 7, 3, 5], attributes: { size: 5, alpha: float(1e-3), beta: float(0.6), bias: float(2) } },
  // Wider than the channels: every channel sees them all.
  { shape: [1, 3, 2, 9], attributes: { size: 7, alpha: float(0.5), beta: float(1) } },
  { shape: [3, 5, 4, 1], attributes: { size: 1, alpha: float(0.3) } },
  { shape: [0, 3, 4, 4], attributes: { size: 3 } },
];

describe('LRN', () => {
  for (const opset of [12, 13]) {
    for (const { shape, attributes } of CASES) {
      it(`opset ${opset}: [${shape}] ${JSON.stringify(attributes)}`, () =>
        checkOneNode(gpu, { op: 'LRN', inputs: [['x', shape]], output: shape, attributes, opset, scale: 3 }));
    }
  }

  // An even window reaches one channel further up than down.
  const FORMULA_CASES: LrnCase[] = [
    { shape: [2, 6, 4, 3], attributes: { size: 4, alpha: float(0.02) } },
    { shape: [3, 5, 11], attributes: { size: 2, bias: float(1.5), alpha: float(0.1) } },
    { shape: [1, 4, 3, 2, 5], attributes: { size: 3, beta: float(0.5), alpha: float(0.2) } },
  ];
  for (const { shape, attributes } of FORMULA_CASES) {
    it(`against the ONNX formula: [${shape}] ${JSON.stringify(attributes)}`, async () => {
      const bytes = buildOneNodeModel({ op: 'LRN', inputs: [['x', shape]], output: shape, attributes, opset: 13 });
      const model = await compileOnnxModel(gpu, bytes, { isolate: false });
      try {
        const x = randomTensor(shape, 3);
        const ours = await model.run(new Map([['x', x]]));
        expectClose('y', ours.outputs.get('y'), lrnFormula(x, attributes));
      } finally {
        model.dispose();
      }
    });
  }

  it('folds a constant input on the host', async () => {
    const shape = [1, 5, 3, 3];
    const data = randomTensor(shape, 2);
    const bytes = new GraphBuilder('folded_lrn').input('x', 'FP32', shape).initializer('data', 'FP32', shape, data.data)
      .node('LRN', ['data'], ['normalized'], { size: 3, alpha: float(0.1) }).node('Add', ['x', 'normalized'], ['y'])
      .output('y', 'FP32', shape).toBytes({ opset: 13 });
    await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape }], [{ name: 'y', shape }]);
  });

  it('refuses a node without size, and a size below 1, naming the node', async () => {
    const refused: Array<Record<string, AttributeValue>> = [{}, { size: 0 }];
    for (const attributes of refused) {
      const error = await compileError(gpu, buildOneNodeModel({ op: 'LRN', inputs: [['x', [1, 3, 2, 2]]], output: [1, 3, 2, 2], attributes, nodeName: 'lrn_bad' }));
      expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
      expect(error.message).toContain("node 'lrn_bad' (LRN) is invalid");
    }
  });
});
