/**
 * RoiAlign (opsets 10, 16, 22): avg and max pooling of bilinear samples over regions of
 * interest, as onnxruntime computes them; coordinate_transformation_mode from opset 16
 * (half_pixel by default there; opset 10 behaves as output_half_pixel).
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { NodeProto } from '../../onnx/model.ts';
import { roiAlignDispatch, roiAlignVariant, type RoiAlignAttributes } from '../kernels/sampling.ts';
import { attributeOf, enumAttribute, floatAttribute, intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { OperatorSpec } from './contract.ts';
import { required } from './parameters.ts';
import { floatStorage, io, sameAsInput } from './spec-parts.ts';

function roiAlignAttributes(node: NodeProto, opset: number): RoiAlignAttributes & { isMax: boolean } {
  const isMax = enumAttribute(node, 'mode', ['avg', 'max'] as const, 'avg') === 'max';
  const transform = opset >= 16
    ? enumAttribute(node, 'coordinate_transformation_mode', ['half_pixel', 'output_half_pixel'] as const, 'half_pixel')
    : 'output_half_pixel';
  const attributes = {
    isMax,
    outputHeight: intAttribute(node, 'output_height', 1),
    outputWidth: intAttribute(node, 'output_width', 1),
    samplingRatio: intAttribute(node, 'sampling_ratio', 0),
    spatialScale: floatAttribute(node, 'spatial_scale', 1),
    halfPixel: transform === 'half_pixel',
  };
  if (attributes.outputHeight < 1 || attributes.outputWidth < 1) {
    throw invalidNode(node, `output_height=${attributes.outputHeight}, output_width=${attributes.outputWidth} (each must be at least 1)`);
  }
  if (attributes.samplingRatio < 0) throw invalidNode(node, `sampling_ratio=${attributes.samplingRatio} (it must be 0 or more)`);
  return attributes;
}

export const roiAlignSpec: OperatorSpec = {
  attributes: ['coordinate_transformation_mode', 'mode', 'output_height', 'output_width', 'sampling_ratio', 'spatial_scale'],
  inputs: [3, 3],
  types: sameAsInput,
  validate(node, opset) {
    if (opset < 16 && attributeOf(node, 'coordinate_transformation_mode')) {
      throw unsupported(node, `coordinate_transformation_mode, which RoiAlign defines from opset 16 (the model is at ${opset})`);
    }
    roiAlignAttributes(node, opset);
  },
  device(context) {
    const attributes = roiAlignAttributes(context.node, context.opset);
    return {
      kind: 'kernel',
      variants: [roiAlignVariant(floatStorage(context), attributes.isMax)],
      plan(inputs, maxPerDimension) {
        const xShape = required(inputs, 0).shape;
        const roisShape = required(inputs, 1).shape;
        const indicesShape = required(inputs, 2).shape;
        if (xShape.length !== 4) throw invalidArgument(`input 'X' has shape [${xShape.join(', ')}], expected [N, C, H, W]`);
        if (roisShape.length !== 2 || roisShape[1] !== 4) throw invalidArgument(`input 'rois' has shape [${roisShape.join(', ')}], expected [num_rois, 4]`);
        if (indicesShape.length !== 1 || indicesShape[0] !== roisShape[0]) {
          throw invalidArgument(`input 'batch_indices' has shape [${indicesShape.join(', ')}], expected [${roisShape[0]}]`);
        }
        return {
          outputShapes: [[roisShape[0], xShape[1], attributes.outputHeight, attributes.outputWidth]],
          dispatches: [{ ...roiAlignDispatch(xShape, roisShape[0], attributes, maxPerDimension), bindings: io(3) }],
        };
      },
    };
  },
};
