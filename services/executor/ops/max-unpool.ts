/**
 * MaxUnpool (opsets 9, 11, 22) over any number of spatial dims, as onnxruntime computes it:
 * zeros, with the input's values put back at the flat indices a MaxPool's Indices output gave
 * them; the output's shape from output_shape (read on the host; a MaxPool's input shape, so
 * that its indices land where they came from) or from kernel_shape, strides and pads. The ONNX
 * 1.12 test with a larger output_shape expects indices unravelled in the inferred shape instead,
 * which puts a MaxPool's indices in the wrong places; onnxruntime and this follow the spec's text.
 */
import { invalidArgument } from '../../domain/errors.ts';
import { maxUnpoolDispatches, maxUnpoolVariants } from '../kernels/max-unpool.ts';
import { product, sameShape, toNumbers } from '../tensor/index.ts';
import { intsAttribute, invalidNode } from './attributes.ts';
import type { OperatorSpec } from './contract.ts';
import { required } from './parameters.ts';
import { outputStorage, sameAsInput } from './spec-parts.ts';
import { windowAttributes } from './window-attributes.ts';

export const maxUnpoolSpec: OperatorSpec = {
  attributes: ['kernel_shape', 'pads', 'strides'],
  inputs: [2, 3],
  parameters: [2],
  types: sameAsInput,
  validate(node) {
    if (!intsAttribute(node, 'kernel_shape')) throw invalidNode(node, 'kernel_shape is required');
  },
  device(context) {
    const { node } = context;
    const spatial = intsAttribute(node, 'kernel_shape')?.length ?? 0;
    const window = windowAttributes(node, spatial);
    return {
      kind: 'kernel',
      variants: maxUnpoolVariants(outputStorage(context)),
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        const indicesShape = required(inputs, 1).shape;
        if (shape.length !== spatial + 2) throw invalidArgument(`MaxUnpool input 'X' [${shape.join(', ')}] needs ${spatial + 2} dims for a ${spatial}-D kernel_shape`);
        if (!sameShape(indicesShape, shape)) throw invalidArgument(`input 'I' has shape [${indicesShape.join(', ')}], expected X's [${shape.join(', ')}]`);
        const inferred = [shape[0], shape[1], ...shape.slice(2).map((size, dim) =>
          (size - 1) * window.strides[dim] + window.kernel[dim] - window.pads[dim] - window.pads[dim + spatial])];
        const given = inputs[2]?.value;
        const outShape = given ? toNumbers(given) : inferred;
        if (outShape.length !== shape.length || [...outShape, ...inferred].some((dim) => !Number.isInteger(dim) || dim < 0)) {
          throw invalidArgument(`MaxUnpool output shape [${outShape.join(', ')}] is not a shape of rank ${shape.length}`);
        }
        const bindings = [{ input: 0 }, { input: 1 }, { output: 0 }];
        return {
          outputShapes: [outShape],
          dispatches: maxUnpoolDispatches(product(shape), product(outShape), maxPerDimension).map((dispatch) => ({ ...dispatch, bindings })),
        };
      },
    };
  },
};
