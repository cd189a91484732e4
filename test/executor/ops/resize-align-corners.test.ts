/**
 * Resize with align_corners when scale × input length is fractional: the output's integer length
 * is the divisor (the spec's text, onnxruntime), not scale × length as in ONNX's Python reference.
 * The conformance case's own input pins the value, and random inputs are checked against
 * onnxruntime for linear and cubic, downsampling and upsampling.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import { randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

function alignCornersResize(shape: number[], scales: number[], mode: 'linear' | 'cubic'): Uint8Array {
  const graph = new GraphBuilder('resize_align_corners').input('x', 'FP32', shape)
    .initializer('scales', 'FP32', [scales.length], Float32Array.from(scales))
    .node('Resize', ['x', '', 'scales'], ['y'], { mode, coordinate_transformation_mode: 'align_corners' }).output('y', 'FP32', []);
  return unrankedOutputs(graph, 13);
}

describe('Resize align_corners with a fractional scale × length', () => {
  it('the conformance input: [1, 2, 3, 4; 5, 6, 7, 8] at 0.6 gives [1, 4] (numpy\'s reference: [1, 3.142857])', async () => {
    const model = await compileOnnxModel(gpu, alignCornersResize([1, 1, 2, 4], [1, 1, 0.6, 0.6], 'linear'), { isolate: false });
    try {
      const { outputs } = await model.run(new Map([['x', { datatype: 'FP32', shape: [1, 1, 2, 4], data: Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8) }]]));
      expect(outputs.get('y')!.shape).toEqual([1, 1, 1, 2]);
      expect(Array.from(outputs.get('y')!.data as Float32Array)).toEqual([1, 4]);
    } finally {
      model.dispose();
    }
  });
  it.each<['linear' | 'cubic', number[], number[]]>([
    ['linear', [2, 3, 9, 11], [1, 1, 0.6, 0.45]],
    ['cubic', [1, 2, 13, 7], [1, 1, 0.7, 0.6]],
    ['linear', [1, 3, 5, 6], [1, 1, 1.7, 2.3]],
    ['cubic', [2, 1, 4, 9], [1, 1, 2.6, 0.8]],
  ])('%s %j × %j matches onnxruntime', async (mode, shape, scales) =>
    void await checkRuns(gpu, alignCornersResize(shape, scales, mode), [0, 1].map(() => new Map([['x', randomTensor(shape)]]))));
});
