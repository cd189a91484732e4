/**
 * GridSample (opsets 16, 20, 22): nearest, linear and cubic sampling (named bilinear / bicubic
 * before opset 20), padding zeros, border or reflection, align_corners, as onnxruntime computes
 * them; over 2 spatial dims, and from opset 20 over 3 (nearest and linear: ONNX defines cubic
 * for 4-D inputs only).
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
    const type = floatStorage(context);
    // Plans of both ranks may come from one node (a model whose input rank is not declared).
    const variants = [gridSampleVariant(type, mode, padding, false), gridSampleVariant(type, mode === 'cubic' ? 'linear' : mode, padding, true)];
    return {
      kind: 'kernel',
      variants,
      plan(inputs, maxPerDimension) {
        const xShape = required(inputs, 0).shape;
        const gridShape = required(inputs, 1).shape;
        const spatial = xShape.length - 2;
        const volume = spatial === 3;
        if (spatial !== 2 && !(volume && context.opset >= 20)) {
          throw invalidArgument(`input 'X' has shape [${xShape.join(', ')}], expected [N, C, H, W]${context.opset >= 20 ? ' or [N, C, D, H, W]' : ''}`);
        }
        if (volume && mode === 'cubic') throw invalidArgument(`GridSample's cubic mode takes 4-D inputs only, X is [${xShape.join(', ')}]`);
        if (gridShape.length !== xShape.length || gridShape[0] !== xShape[0] || gridShape[spatial + 1] !== spatial) {
          throw invalidArgument(`input 'grid' has shape [${gridShape.join(', ')}], expected [${xShape[0]}, ${volume ? 'D_out, ' : ''}H_out, W_out, ${spatial}]`);
        }
        const outSpatial = gridShape.slice(1, spatial + 1);
        return {
          outputShapes: [[xShape[0], xShape[1], ...outSpatial]],
          dispatches: [{ ...gridSampleDispatch(xShape, outSpatial, alignCorners, maxPerDimension), variant: volume ? 1 : 0, bindings: io(2) }],
        };
      },
    };
  },
};
