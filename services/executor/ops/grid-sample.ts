/**
 * GridSample (opsets 16, 20, 22) over 2 spatial dims: nearest, linear and cubic sampling (named
 * bilinear / bicubic before opset 20), padding zeros, border or reflection, align_corners, as
 * onnxruntime computes them. Opset 20's volumetric form (5-D input) is refused.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { NodeProto } from '../../onnx/model.ts';
import { GRID_SAMPLE_PADDINGS, gridSampleDispatch, gridSampleVariant, type GridSampleMode } from '../kernels/sampling.ts';
import { booleanAttribute, enumAttribute } from './attributes.ts';
import type { OperatorSpec } from './contract.ts';
import { required } from './parameters.ts';
import { floatStorage, io, sameAsInput } from './spec-parts.ts';

/** Opset 20 renamed bilinear and bicubic to linear and cubic. */
function samplingMode(node: NodeProto, opset: number): GridSampleMode {
  if (opset >= 20) return enumAttribute(node, 'mode', ['linear', 'nearest', 'cubic'] as const, 'linear');
  const mode = enumAttribute(node, 'mode', ['bilinear', 'nearest', 'bicubic'] as const, 'bilinear');
  return mode === 'bilinear' ? 'linear' : mode === 'bicubic' ? 'cubic' : 'nearest';
}

export const gridSampleSpec: OperatorSpec = {
  attributes: ['align_corners', 'mode', 'padding_mode'],
  inputs: [2, 2],
  types: sameAsInput,
  validate(node, opset) {
    samplingMode(node, opset);
    enumAttribute(node, 'padding_mode', GRID_SAMPLE_PADDINGS, 'zeros');
    booleanAttribute(node, 'align_corners');
  },
  device(context) {
    const { node } = context;
    const mode = samplingMode(node, context.opset);
    const padding = enumAttribute(node, 'padding_mode', GRID_SAMPLE_PADDINGS, 'zeros');
    const alignCorners = booleanAttribute(node, 'align_corners');
    return {
      kind: 'kernel',
      variants: [gridSampleVariant(floatStorage(context), mode, padding)],
      plan(inputs, maxPerDimension) {
        const xShape = required(inputs, 0).shape;
        const gridShape = required(inputs, 1).shape;
        if (xShape.length === 5) throw invalidArgument(`GridSample over 3 spatial dims (input X [${xShape.join(', ')}]) is not supported; X must be [N, C, H, W]`);
        if (xShape.length !== 4) throw invalidArgument(`input 'X' has shape [${xShape.join(', ')}], expected [N, C, H, W]`);
        if (gridShape.length !== 4 || gridShape[0] !== xShape[0] || gridShape[3] !== 2) {
          throw invalidArgument(`input 'grid' has shape [${gridShape.join(', ')}], expected [${xShape[0]}, H_out, W_out, 2]`);
        }
        const [outH, outW] = [gridShape[1], gridShape[2]];
        return {
          outputShapes: [[xShape[0], xShape[1], outH, outW]],
          dispatches: [{ ...gridSampleDispatch(xShape, outH, outW, alignCorners, maxPerDimension), bindings: io(2) }],
        };
      },
    };
  },
};
