/**
 * RoiAlign against onnxruntime on fresh random inputs: avg and max, half_pixel and
 * output_half_pixel (opset 16) and the opset 10 form, sampling_ratio given or adaptive,
 * spatial_scale, regions reaching past the image, several batches; invalid attributes refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import type { AttributeValue } from '../../../services/onnx/builder.ts';
import { float } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { buildOneNodeModel, checkOneNode, compileError, type OneNodeCase } from '../numerics/one-node.ts';
import { randomIntegers } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const X_SHAPE = [2, 3, 11, 13];
const ROIS = 5;

/** Regions with corners in [-2, 16) (scaled by `scale` they may reach past the image), x1 <= x2 and y1 <= y2. */
function randomRois(shape: number[]): HostTensor {
  const values = new Float32Array(shape[0] * 4);
  for (let roi = 0; roi < shape[0]; roi++) {
    const [a, b, c, d] = Array.from({ length: 4 }, () => Math.random() * 18 - 2);
    values.set([Math.min(a, b), Math.min(c, d), Math.max(a, b), Math.max(c, d)], roi * 4);
  }
  return { datatype: 'FP32', shape, data: values };
}

function roiCase(attributes: Record<string, AttributeValue>, opset: number): OneNodeCase {
  const outH = Number(attributes.output_height ?? 1);
  const outW = Number(attributes.output_width ?? 1);
  return {
    op: 'RoiAlign', opset, attributes, output: [ROIS, X_SHAPE[1], outH, outW],
    inputs: [
      ['x', X_SHAPE],
      { name: 'rois', shape: [ROIS, 4], fill: randomRois },
      { name: 'batch_indices', shape: [ROIS], datatype: 'INT64', fill: (shape: number[]) => randomIntegers(shape, 0, X_SHAPE[0] - 1) },
    ],
  };
}

describe('RoiAlign against onnxruntime', () => {
  for (const mode of ['avg', 'max']) {
    for (const transform of ['half_pixel', 'output_half_pixel']) {
      for (const samplingRatio of [0, 2]) {
        it(`opset 16: ${mode}, ${transform}, sampling_ratio=${samplingRatio}`, () => checkOneNode(gpu, roiCase({
          mode, coordinate_transformation_mode: transform, sampling_ratio: samplingRatio, output_height: 3, output_width: 5,
        }, 16)));
      }
    }
    it(`opset 10: ${mode}, spatial_scale 0.5`, () => checkOneNode(gpu, roiCase({
      mode, output_height: 4, output_width: 2, spatial_scale: float(0.5), sampling_ratio: 3,
    }, 10)));
  }
  it('the defaults (one bin, adaptive sampling, half_pixel)', () => checkOneNode(gpu, roiCase({}, 16)));
});

describe('RoiAlign refusals', () => {
  it('refuses an unknown mode, an empty output and coordinate_transformation_mode before opset 16', async () => {
    const cases: Array<[Record<string, AttributeValue>, number, string]> = [
      [{ mode: 'median' }, 16, "mode='median'"],
      [{ output_height: 0 }, 16, 'output_height=0'],
      [{ coordinate_transformation_mode: 'half_pixel' }, 10, 'coordinate_transformation_mode'],
    ];
    for (const [attributes, opset, detail] of cases) {
      const error = await compileError(gpu, buildOneNodeModel({ ...roiCase(attributes, opset), output: [ROIS, 3, 1, 1], nodeName: 'pooler' }));
      expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
      expect(error.message).toContain("node 'pooler'");
      expect(error.message).toContain(detail);
    }
  });
});
