/**
 * Window operators beyond the 2-D kernels: Conv, ConvTranspose, MaxPool and AveragePool over 3
 * spatial dims (volumes), and LpPool / GlobalLpPool over 1 to 3, on the direct window kernels
 * (kernels/window-nd.ts). The 1-D and 2-D Conv, ConvTranspose and pools keep their GEMM and 2-D
 * kernels (gemm-conv.ts, pool.ts), which hand volumes over here.
 */
import type { NodeProto } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import { IDENTITY } from '../kernels/index.ts';
import {
  convNdDispatch, convNdVariant, convTransposeNdVariant, poolNdDispatch, poolNdVariant, WINDOW_MAX_SPATIAL, type PoolMode, type WindowProblem,
} from '../kernels/window-nd.ts';
import { convTransposeGeometry, kindOf, product, sameShape, type StorageType, windowGeometry } from '../tensor/index.ts';
import { booleanAttribute, intAttribute, intsAttribute, invalidNode, unsupported } from './attributes.ts';
import type { BindingRef, DeviceOperator, LoadContext, OperatorSpec } from './contract.ts';
import { required } from './parameters.ts';
import { floatStorage, inputStorage, sameAsInput } from './spec-parts.ts';
import { windowAttributes, type WindowSetup } from './window-attributes.ts';

/** The spatial rank a window node declares: its constant weights' (input 1), else its kernel_shape's. */
function declaredSpatialRank(context: LoadContext, weightsInput: boolean): number | undefined {
  const weights = weightsInput ? context.inputs[1]?.constant : undefined;
  return weights ? weights.shape.length - 2 : intsAttribute(context.node, 'kernel_shape')?.length;
}

/** True for a Conv / ConvTranspose (weights in input 1) or pool whose window has 3 spatial dims. */
export function isVolumetric(context: LoadContext, weightsInput: boolean): boolean {
  return declaredSpatialRank(context, weightsInput) === 3;
}

/**
 * A Conv / ConvTranspose's window, known at load when its weights are constant or it has a
 * kernel_shape; otherwise (weights given as a graph input, no kernel_shape) read from each run's
 * weight shape, as the spec infers kernel_shape from W.
 */
function convWindow(context: LoadContext, op: string): (wShape: readonly number[]) => { spatial: number; window: WindowSetup } {
  const { node } = context;
  const declared = declaredSpatialRank(context, true);
  const atLoad = declared === undefined ? undefined : { spatial: declared, window: windowAttributes(node, declared, context.inputs[1]?.constant?.shape.slice(2)) };
  return (wShape) => {
    if (atLoad) return atLoad;
    const spatial = wShape.length - 2;
    if (spatial < 1 || spatial > WINDOW_MAX_SPATIAL) throw invalidArgument(`${op} weights [${wShape}] need 1 to ${WINDOW_MAX_SPATIAL} spatial dims after [M, C]`);
    return { spatial, window: windowAttributes(node, spatial, wShape.slice(2)) };
  };
}

/**
 * Conv over 3 spatial dims, or over 1 to 3 with weights computed at run time (read in place, no
 * re-layout): groups, strides, pads, dilations, auto_pad, and the fused bias, residual and activation.
 */
export function convNdOperator(context: LoadContext): DeviceOperator {
  const { node } = context;
  const type = floatStorage(context);
  const windowOf = convWindow(context, 'Conv');
  const groups = intAttribute(node, 'group', 1);
  const epilogue = context.epilogue;
  // Fused values sit after the node's own inputs: the node's bias is input 2 only when it has one.
  const biasInput = epilogue?.bias ?? (node.input[2] ? 2 : undefined);
  const residualInput = epilogue?.residual;
  return {
    kind: 'kernel',
    variants: [convNdVariant(type, biasInput !== undefined, residualInput !== undefined)],
    plan(inputs, maxPerDimension) {
      const xShape = required(inputs, 0).shape;
      const wShape = required(inputs, 1).shape;
      const { spatial, window } = windowOf(wShape);
      if (xShape.length !== spatial + 2 || wShape.length !== spatial + 2) throw invalidArgument(`Conv needs ${spatial + 2}-D input and weights, got [${xShape}] and [${wShape}]`);
      const [batch, inChannels] = xShape;
      const [outChannels, inPerGroup] = wShape;
      if (groups < 1 || outChannels % groups !== 0 || inChannels !== inPerGroup * groups) {
        throw invalidArgument(`Conv weights [${wShape}] in ${groups} groups do not match ${inChannels} input channels`);
      }
      if (window.kernel.some((size, dim) => size !== wShape[2 + dim])) throw invalidArgument(`kernel_shape [${window.kernel}] differs from the weights [${wShape}]`);
      if (biasInput !== undefined && product(required(inputs, biasInput).shape) !== outChannels) throw invalidArgument(`Conv bias needs ${outChannels} values`);
      const { outSpatial, padBegin, padEnd } = windowGeometry(xShape.slice(2), window);
      const outShape = [batch, outChannels, ...outSpatial];
      if (residualInput !== undefined && !sameShape(required(inputs, residualInput).shape, outShape)) {
        throw invalidArgument(`the residual [${required(inputs, residualInput).shape}] added to this output does not have its shape [${outShape}]`);
      }
      const problem: WindowProblem = {
        batch, inChannels, outChannels, groups, inSpatial: xShape.slice(2), outSpatial, kernel: window.kernel, strides: window.strides,
        dilations: window.dilations, padBegin, padEnd,
      };
      const bindings: BindingRef[] = [
        { input: 0 }, { input: 1 }, biasInput === undefined ? { placeholder: true } : { input: biasInput },
        residualInput === undefined ? { placeholder: true } : { input: residualInput }, { output: 0 },
      ];
      return { outputShapes: [outShape], dispatches: [{ ...convNdDispatch(problem, epilogue?.activation ?? IDENTITY, maxPerDimension), bindings }] };
    },
  };
}

/**
 * ConvTranspose over 3 spatial dims, or over 1 to 3 when only the run's weights tell the window:
 * groups, strides, pads, dilations, output_padding, output_shape, auto_pad, a fused activation.
 */
export function convTransposeNdOperator(context: LoadContext): DeviceOperator {
  const { node } = context;
  const type = floatStorage(context);
  const windowOf = convWindow(context, 'ConvTranspose');
  const outputPaddingAttribute = intsAttribute(node, 'output_padding');
  const outputShape = intsAttribute(node, 'output_shape');
  const groups = intAttribute(node, 'group', 1);
  const hasBias = Boolean(node.input[2]);
  return {
    kind: 'kernel',
    variants: [convTransposeNdVariant(type, hasBias)],
    plan(inputs, maxPerDimension) {
      const xShape = required(inputs, 0).shape;
      const wShape = required(inputs, 1).shape;
      const { spatial, window } = windowOf(wShape);
      if (xShape.length !== spatial + 2 || wShape.length !== spatial + 2) throw invalidArgument(`ConvTranspose needs ${spatial + 2}-D input and weights`);
      const outputPadding = outputPaddingAttribute ?? new Array<number>(spatial).fill(0);
      const [batch, inChannels] = xShape;
      if (wShape[0] !== inChannels || inChannels % groups !== 0) throw invalidArgument(`ConvTranspose weights [${wShape}] do not match ${inChannels} input channels in ${groups} groups`);
      const outChannels = wShape[1] * groups;
      if (hasBias && product(required(inputs, 2).shape) !== outChannels) throw invalidArgument(`ConvTranspose bias needs ${outChannels} values`);
      const geometry = convTransposeGeometry(xShape.slice(2), {
        ...window, kernel: wShape.slice(2), outputPadding, outputShape: outputShape ? outputShape.slice(-spatial) : undefined,
      });
      const problem: WindowProblem = {
        batch, inChannels, outChannels, groups, inSpatial: xShape.slice(2), outSpatial: geometry.outSpatial, kernel: wShape.slice(2),
        strides: window.strides, dilations: window.dilations, padBegin: geometry.padBegin, padEnd: geometry.padEnd,
      };
      return {
        outputShapes: [[batch, outChannels, ...geometry.outSpatial]],
        dispatches: [{
          ...convNdDispatch(problem, context.epilogue?.activation ?? IDENTITY, maxPerDimension),
          bindings: [{ input: 0 }, { input: 1 }, hasBias ? { input: 2 } : { placeholder: true }, { output: 0 }],
        }],
      };
    },
  };
}

/**
 * MaxPool's storage type: floats, and the INT8 / UINT8 its opset 12 added (held in i32; the
 * kernels' f32 maximum is exact for them), FAILED_PRECONDITION for any other type.
 */
export function maxPoolStorage(context: LoadContext): StorageType {
  const datatype = context.inputs[0]?.datatype;
  if (datatype === 'INT8' || datatype === 'UINT8') {
    if (context.opset < 12) throw unsupported(context.node, `${datatype} input, which MaxPool takes from opset 12 (the model is at ${context.opset})`);
    return inputStorage(context, 0);
  }
  if (datatype && kindOf(datatype) !== 'float') throw unsupported(context.node, `${datatype} input (floats, INT8 and UINT8)`);
  return floatStorage(context);
}

/** The window of a pool node over `spatial` dims, the global pools' window being the whole input. */
function poolOperator(context: LoadContext, mode: PoolMode, window: (spatialShape: readonly number[]) => ReturnType<typeof windowGeometry> & { kernel: number[]; strides: number[]; dilations: number[] }): DeviceOperator {
  const { node } = context;
  const type = mode === 'max' ? maxPoolStorage(context) : floatStorage(context);
  const countIncludePad = mode === 'average' && booleanAttribute(node, 'count_include_pad');
  const p = mode === 'lp' ? intAttribute(node, 'p', 2) : 1;
  return {
    kind: 'kernel',
    variants: [poolNdVariant(type, mode)],
    plan(inputs, maxPerDimension) {
      const shape = required(inputs, 0).shape;
      const spatialShape = shape.slice(2);
      if (shape.length < 3 || spatialShape.length > WINDOW_MAX_SPATIAL) throw invalidArgument(`${node.opType} input [${shape}] needs 1 to ${WINDOW_MAX_SPATIAL} spatial dims after [N, C]`);
      const geometry = window(spatialShape);
      const problem: WindowProblem = {
        batch: shape[0], inChannels: shape[1], outChannels: shape[1], groups: shape[1], inSpatial: spatialShape, outSpatial: geometry.outSpatial,
        kernel: geometry.kernel, strides: geometry.strides, dilations: geometry.dilations, padBegin: geometry.padBegin, padEnd: geometry.padEnd,
      };
      return {
        outputShapes: [[shape[0], shape[1], ...geometry.outSpatial]],
        dispatches: [{ ...poolNdDispatch(problem, countIncludePad, p, maxPerDimension), bindings: [{ input: 0 }, { output: 0 }] }],
      };
    },
  };
}

/** MaxPool / AveragePool / LpPool with kernel_shape, strides, pads, dilations, auto_pad and ceil_mode. */
export function windowPoolOperator(context: LoadContext, mode: PoolMode): DeviceOperator {
  const { node } = context;
  const spatial = declaredSpatialRank(context, false);
  if (spatial === undefined) throw invalidNode(node, 'kernel_shape is required');
  const setup = windowAttributes(node, spatial);
  const ceilMode = booleanAttribute(node, 'ceil_mode');
  return poolOperator(context, mode, (spatialShape) => {
    if (spatialShape.length !== spatial) throw invalidArgument(`${node.opType} input has ${spatialShape.length} spatial dims, kernel_shape ${spatial}`);
    return { ...setup, ...windowGeometry(spatialShape, { ...setup, ceilMode }) };
  });
}

function checkLpNorm(node: NodeProto): void {
  const p = intAttribute(node, 'p', 2);
  if (p < 1) throw unsupported(node, `p=${p} (a norm needs p >= 1)`);
}

/** LpPool (opsets 2, 11, 18: pads, strides, dilations, ceil_mode by version) over 1 to 3 spatial dims. */
export const lpPoolSpec: OperatorSpec = {
  attributes: ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'p', 'pads', 'strides'],
  inputs: [1, 1],
  types: sameAsInput,
  validate(node, opset) {
    checkLpNorm(node);
    if (opset < 18 && (intsAttribute(node, 'dilations') || intAttribute(node, 'ceil_mode', 0) !== 0)) {
      throw unsupported(node, `dilations or ceil_mode, which LpPool defines from opset 18 (the model is at ${opset})`);
    }
  },
  device: (context) => windowPoolOperator(context, 'lp'),
};

/** GlobalLpPool (opsets 2): the p-norm over every spatial position of each channel. */
export const globalLpPoolSpec: OperatorSpec = {
  attributes: ['p'],
  inputs: [1, 1],
  types: sameAsInput,
  validate: checkLpNorm,
  device: (context) => poolOperator(context, 'lp', (spatialShape) => ({
    kernel: [...spatialShape], strides: spatialShape.map(() => 1), dilations: spatialShape.map(() => 1),
    outSpatial: spatialShape.map(() => 1), padBegin: spatialShape.map(() => 0), padEnd: spatialShape.map(() => 0),
  })),
};
