/**
 * Pooling: MaxPool (with its Indices output in 1-D and 2-D) and AveragePool over 1-D or 2-D
 * windows (pads, strides, dilations, auto_pad, ceil_mode, count_include_pad; 3-D windows run on
 * window-nd.ts's kernels), and the global pools as reductions over the spatial dims.
 */
import { invalidArgument } from '../../domain/errors.ts';
import { poolDispatch, poolVariant, reduceDispatch, type ReduceOp, reduceVariants } from '../kernels/index.ts';
import { maxPoolIndicesVariant } from '../kernels/pool-indices.ts';
import { windowGeometry } from '../tensor/index.ts';
import { booleanAttribute, intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { OperatorPlan, OperatorSpec, PlannedKernel } from './contract.ts';
import { required } from './parameters.ts';
import { floatStorage, inputStorage, io, sameAsInput } from './spec-parts.ts';
import { as2d, spatialRank, windowAttributes } from './window-attributes.ts';
import { isVolumetric, maxPoolStorage, windowPoolOperator } from './window-nd.ts';

/** MaxPool (`isMax`) or AveragePool. */
export function poolSpec(isMax: boolean): OperatorSpec {
  return {
    attributes: isMax
      ? ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'storage_order', 'strides']
      : ['auto_pad', 'ceil_mode', 'count_include_pad', 'dilations', 'kernel_shape', 'pads', 'strides'],
    inputs: [1, 1],
    outputs: isMax ? [1, 2] : [1, 1],
    // MaxPool's Indices (opset 8 on) are computed when the node names them.
    computesEveryOutput: isMax,
    types: isMax ? ({ inputTypes }) => [inputTypes[0] ?? 'FP32', 'INT64'] : sameAsInput,
    device(context) {
      const { node } = context;
      const withIndices = isMax && Boolean(node.output[1]);
      if (withIndices && isVolumetric(context, false)) throw unsupported(node, "output 'Indices' of a 3-D MaxPool (1-D and 2-D compute it)");
      if (isVolumetric(context, false)) return windowPoolOperator(context, isMax ? 'max' : 'average');
      const type = isMax ? maxPoolStorage(context) : floatStorage(context);
      const spatial = spatialRank(node, undefined);
      const window = windowAttributes(node, spatial);
      const ceilMode = booleanAttribute(node, 'ceil_mode');
      const countIncludePad = !isMax && booleanAttribute(node, 'count_include_pad');
      const storageOrder = intAttribute(node, 'storage_order', 0);
      if (storageOrder !== 0 && storageOrder !== 1) throw invalidNode(node, `storage_order ${storageOrder} must be 0 (row major) or 1 (column major)`);
      return {
        kind: 'kernel',
        variants: [withIndices ? maxPoolIndicesVariant(type, storageOrder === 1) : poolVariant(type, isMax)],
        plan(inputs, maxPerDimension): OperatorPlan {
          const shape = required(inputs, 0).shape;
          if (shape.length !== spatial + 2) throw invalidArgument(`pooling input [${shape}] needs ${spatial + 2} dims`);
          const { outSpatial, padBegin, padEnd } = windowGeometry(shape.slice(2), { ...window, ceilMode });
          const outShape = [shape[0], shape[1], ...outSpatial];
          const [inH, inW] = as2d(spatial, shape.slice(2), 1);
          const [outH, outW] = as2d(spatial, outSpatial, 1);
          const [kernelH, kernelW] = as2d(spatial, window.kernel, 1);
          const [strideH, strideW] = as2d(spatial, window.strides, 1);
          const [dilationH, dilationW] = as2d(spatial, window.dilations, 1);
          const [padTop, padLeft] = as2d(spatial, padBegin, 0);
          const [padBottom, padRight] = as2d(spatial, padEnd, 0);
          const dispatch = poolDispatch({
            planes: shape[0] * shape[1], inH, inW, outH, outW, kernelH, kernelW, strideH, strideW, padTop, padLeft, padBottom, padRight,
            dilationH, dilationW, countIncludePad,
          }, maxPerDimension);
          if (withIndices) {
            return { outputShapes: [outShape, [...outShape]], dispatches: [{ ...dispatch, bindings: [{ input: 0 }, { output: 0 }, { output: 1 }] }] };
          }
          const kernel: PlannedKernel = { ...dispatch, bindings: [{ input: 0 }, { output: 0 }] };
          return { outputShapes: [outShape], dispatches: [kernel] };
        },
      };
    },
  };
}

/** GlobalAveragePool (`mean`) or GlobalMaxPool (`max`). */
export function globalPoolSpec(op: ReduceOp): OperatorSpec {
  return {
    attributes: [],
    inputs: [1, 1],
    types: sameAsInput,
    device(context) {
      return {
        kind: 'kernel',
        variants: reduceVariants(inputStorage(context, 0)),
        plan(inputs, maxPerDimension) {
          const shape = required(inputs, 0).shape;
          if (shape.length < 3) throw invalidArgument(`global pooling needs [N, C, spatial...], got [${shape}]`);
          const axes = shape.map((_, axis) => axis).slice(2);
          const outShape = [shape[0], shape[1], ...axes.map(() => 1)];
          return { outputShapes: [outShape], dispatches: [{ ...reduceDispatch(shape, axes, op, maxPerDimension), bindings: io(1) }] };
        },
      };
    },
  };
}
