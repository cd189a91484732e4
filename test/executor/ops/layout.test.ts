/**
 * DepthToSpace (DCR and CRD), SpaceToDepth and Trilu against onnxruntime on fresh random inputs:
 * several block sizes, odd spatial sizes, FP32 and INT64 elements, empty batches, opsets 1 / 11 /
 * 13 and 14 (INT64 against onnxruntime's FP32 run, its CPU provider moving only floats), Trilu's k below, on and beyond the diagonals and absent, and the CPU implementations
 * folding constant inputs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import { buildOneNodeModel, checkModelAgainstOrt, checkOneNode, int64, type InputSpec } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor, runOrt } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const input = (shape: number[], datatype: Datatype = 'FP32'): InputSpec =>
  (datatype === 'FP32' ? { name: 'x', shape } : { name: 'x', shape, datatype, fill: (dims) => randomIntegers(dims, -1000, 1000) });

/**
 * onnxruntime's CPU provider moves only floats through DepthToSpace / SpaceToDepth: our INT64
 * result must hold exactly the values its FP32 run gives for the same (small, exact) numbers.
 */
async function checkIntegersAgainstFloats(op: string, shape: number[], outShape: number[], attributes: Record<string, AttributeValue>): Promise<void> {
  const model = await compileOnnxModel(gpu, buildOneNodeModel({
    op, inputs: [input(shape, 'INT64')], outputs: [{ name: 'y', shape: outShape, datatype: 'INT64' }], attributes, opset: 13,
  }), { isolate: false });
  try {
    const x = randomIntegers(shape, -1000, 1000);
    const ours = (await model.run(new Map([['x', x]]))).outputs.get('y')!;
    const asFloats = { datatype: 'FP32' as const, shape, data: Float32Array.from(x.data as BigInt64Array, Number) };
    const reference = (await runOrt(buildOneNodeModel({ op, inputs: [['x', shape]], output: outShape, attributes, opset: 13 }), new Map([['x', asFloats]]))).get('y')!;
    expect(ours.shape).toEqual(outShape);
    expect(Array.from(ours.data as BigInt64Array, Number)).toEqual(Array.from(reference.data as Float32Array));
  } finally {
    model.dispose();
  }
}

describe('DepthToSpace', () => {
  const cases: Array<{ shape: number[]; blocksize: number }> = [
    { shape: [2, 8, 3, 5], blocksize: 2 }, { shape: [1, 18, 2, 3], blocksize: 3 }, { shape: [1, 3, 2, 2], blocksize: 1 }, { shape: [0, 4, 2, 2], blocksize: 2 },
  ];
  const out = ([n, c, h, w]: number[], b: number) => [n, c / (b * b), h * b, w * b];
  for (const [opset, modes] of [[1, [undefined]], [11, ['DCR', 'CRD']], [13, ['DCR', 'CRD']]] as const) {
    for (const mode of modes) {
      for (const { shape, blocksize } of cases) {
        const attributes: Record<string, AttributeValue> = { blocksize };
        if (mode) attributes.mode = mode;
        it(`opset ${opset}${mode ? ` ${mode}` : ''}: [${shape}] blocksize ${blocksize}`, () =>
          checkOneNode(gpu, { op: 'DepthToSpace', inputs: [input(shape)], output: out(shape, blocksize), attributes, opset }));
      }
    }
  }
  it('on INT64, CRD', () => checkIntegersAgainstFloats('DepthToSpace', [1, 12, 3, 2], [1, 3, 6, 4], { blocksize: 2, mode: 'CRD' }));
});

describe('SpaceToDepth', () => {
  const cases: Array<{ shape: number[]; blocksize: number }> = [
    { shape: [2, 3, 4, 6], blocksize: 2 }, { shape: [1, 2, 6, 3], blocksize: 3 }, { shape: [3, 5, 2, 2], blocksize: 1 }, { shape: [0, 2, 4, 4], blocksize: 2 },
  ];
  for (const opset of [1, 13]) {
    for (const { shape: [n, c, h, w], blocksize: b } of cases) {
      it(`opset ${opset}: [${[n, c, h, w]}] blocksize ${b}`, () =>
        checkOneNode(gpu, { op: 'SpaceToDepth', inputs: [input([n, c, h, w])], output: [n, c * b * b, h / b, w / b], attributes: { blocksize: b }, opset }));
    }
  }
  it('on INT64', () => checkIntegersAgainstFloats('SpaceToDepth', [2, 3, 4, 2], [2, 12, 2, 1], { blocksize: 2 }));
});

describe('Trilu (opset 14)', () => {
  const shapes = [[4, 5], [2, 3, 5, 4], [3, 1, 6], [0, 3, 3]];
  for (const upper of [1, 0]) {
    for (const shape of shapes) {
      for (const k of [undefined, 0, -2, 3, 100, -100]) {
        it(`${upper ? 'upper' : 'lower'} [${shape}] k ${k ?? 'absent'}`, () => checkOneNode(gpu, {
          op: 'Trilu', inputs: [input(shape)], output: shape, attributes: { upper }, opset: 14,
          ...(k === undefined ? {} : { nodeInputs: ['x', 'k'], initializers: [{ name: 'k', tensor: int64([k], []) }] }),
        }));
      }
    }
  }
  it('on INT64', () => checkOneNode(gpu, {
    op: 'Trilu', inputs: [input([3, 4, 4], 'INT64')], outputs: [{ name: 'y', shape: [3, 4, 4], datatype: 'INT64' }], nodeInputs: ['x', 'k'],
    initializers: [{ name: 'k', tensor: int64([1], []) }], attributes: { upper: 0 }, opset: 14,
  }));
});

describe('folded on the host', () => {
  const cases: Array<{ op: string; shape: number[]; outShape: number[]; attributes: Record<string, AttributeValue>; opset: number }> = [
    { op: 'DepthToSpace', shape: [1, 8, 2, 3], outShape: [1, 2, 4, 6], attributes: { blocksize: 2, mode: 'CRD' }, opset: 13 },
    { op: 'SpaceToDepth', shape: [1, 2, 4, 6], outShape: [1, 8, 2, 3], attributes: { blocksize: 2 }, opset: 13 },
    { op: 'Trilu', shape: [3, 4, 5], outShape: [3, 4, 5], attributes: { upper: 0 }, opset: 14 },
  ];
  for (const { op, shape, outShape, attributes, opset } of cases) {
    it(op, async () => {
      const bytes = new GraphBuilder(`folded_${op.toLowerCase()}`).input('x', 'FP32', outShape).initializer('data', 'FP32', shape, randomTensor(shape).data)
        .node(op, ['data'], ['folded'], attributes).node('Add', ['x', 'folded'], ['y']).output('y', 'FP32', outShape).toBytes({ opset });
      await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: outShape }], [{ name: 'y', shape: outShape }]);
    });
  }
});
