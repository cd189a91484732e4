/**
 * The GEMM-shaped operators (MatMul, Gemm, Conv) and the other windowed ones (ConvTranspose,
 * BatchNormalization, MaxPool, AveragePool). Constant weights are re-laid out once at load time
 * into what the kernels read fastest (B rows padded to vec4s, conv weights as [group][K][C_out]).
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import { convTransposeDispatch, convTransposeVariant, depthwiseDispatch, depthwiseVariant, poolDispatch, poolVariant } from '../kernels/conv.ts';
import { channelAffineDispatch, channelAffineVariant } from '../kernels/elementwise.ts';
import type { KernelVariant, StorageType } from '../kernels/kernel.ts';
import {
  convDispatch, convWeightsForGemm, denseWeightsForGemm, gemmVariants, matmulDispatch, type ConvProblem,
} from '../kernels/matmul.ts';
import { IDENTITY } from '../kernels/unary-ops.ts';
import {
  booleanAttribute, enumAttribute, floatAttribute, intAttribute, intsAttribute, invalidNode, unsupported,
} from './attributes.ts';
import type { BindingRef, LoadContext, OperatorPlan, OperatorSpec, PlanInput, PlannedKernel } from './operators.ts';
import { biasStrides, convTransposeGeometry, gemmShapes, matmulShapes, product, windowGeometry, type AutoPad } from './shapes.ts';
import { kindOf, storageOf, toNumbers } from './values.ts';

const sameAsInput = ({ inputTypes }: { inputTypes: ReadonlyArray<Datatype | undefined> }): Datatype[] => [inputTypes[0] ?? 'FP32'];
const sameShape = (left: readonly number[], right: readonly number[]) => left.length === right.length && left.every((dim, index) => dim === right[index]);

function required(inputs: ReadonlyArray<PlanInput | undefined>, index: number): PlanInput {
  const input = inputs[index];
  if (!input) throw new Error(`input ${index} is absent`);
  return input;
}

function floatStorage(context: LoadContext): StorageType {
  const datatype = context.inputs[0]?.datatype;
  if (!datatype || kindOf(datatype) !== 'float') throw unsupported(context.node, `${datatype ?? 'untyped'} input (floats only)`);
  return storageOf(datatype, context.precision);
}

/** A constant input's values as f32, or FAILED_PRECONDITION when it is not known at load. */
function constantFloats(context: LoadContext, index: number, what: string): { values: Float32Array; shape: number[] } {
  const tensor = context.inputs[index]?.constant;
  if (!tensor) throw unsupported(context.node, `${what} computed at run time (it must be an initializer or a constant)`);
  return { values: Float32Array.from(toNumbers(tensor)), shape: [...tensor.shape] };
}

const fp32 = (shape: number[], values: Float32Array): HostTensor => ({ datatype: 'FP32', shape, data: values });

/** Checks that a fused residual has the output's shape (the graph compiler proved it on probe shapes). */
function checkResidual(inputs: ReadonlyArray<PlanInput | undefined>, index: number | undefined, outShape: readonly number[]): void {
  if (index === undefined) return;
  const shape = required(inputs, index).shape;
  if (!sameShape(shape, outShape)) throw invalidArgument(`the residual [${shape}] added to this output does not have its shape [${outShape}]`);
}

/** Bindings of the GEMM kernels: a, b, bias, residual, output. */
function gemmBindings(b: BindingRef, bias: BindingRef | undefined, residual: number | undefined): BindingRef[] {
  return [{ input: 0 }, b, bias ?? { placeholder: true }, residual === undefined ? { placeholder: true } : { input: residual }, { output: 0 }];
}

// ---------------------------------------------------------------------------------------------
// MatMul and Gemm

/** A constant 2-D B re-laid out as row-major [K, N padded to 4], and its row width in vec4s. */
function paddedWeights(context: LoadContext, index: number, transposed: boolean): { name: string; rowVec4s: number } | undefined {
  const tensor = context.inputs[index]?.constant;
  if (!tensor || tensor.shape.length !== 2) return undefined;
  const [rows, columns] = tensor.shape;
  const [k, n] = transposed ? [columns, rows] : [rows, columns];
  const values = denseWeightsForGemm(Float32Array.from(toNumbers(tensor)), k, n, transposed);
  const rowVec4s = Math.ceil(n / 4);
  return { name: context.addConstant('b_for_gemm', fp32([k, rowVec4s * 4], values)), rowVec4s };
}

export const matMulOperator: OperatorSpec = {
  attributes: [],
  inputs: [2, 2],
  types: sameAsInput,
  device(context) {
    const type = floatStorage(context);
    const epilogue = context.epilogue;
    // A B read through a folded Transpose keeps its stored layout (and the scalar B loader).
    const weights = epilogue?.bPerm ? undefined : paddedWeights(context, 1, false);
    const options = { algorithm: context.traits.gemmAlgorithm, fetcher: 'dense' as const, type, hasBias: epilogue?.bias !== undefined, hasResidual: epilogue?.residual !== undefined };
    return {
      kind: 'kernel',
      variants: gemmVariants({ ...options, bVec4: Boolean(weights) }),
      plan(inputs, maxPerDimension) {
        const { outShape, problem } = matmulShapes(required(inputs, 0).shape, required(inputs, 1).shape, epilogue?.aPerm, epilogue?.bPerm);
        if (epilogue?.bias !== undefined) {
          const count = product(required(inputs, epilogue.bias).shape);
          if (count !== problem.n) throw invalidArgument(`the bias added to this MatMul has ${count} elements, its output ${problem.n} columns`);
          problem.biasStrides = [0, 1];
        }
        checkResidual(inputs, epilogue?.residual, outShape);
        const dispatch = matmulDispatch(context.traits.gemmAlgorithm, problem, weights?.rowVec4s, epilogue?.activation ?? IDENTITY, maxPerDimension);
        const bias = epilogue?.bias === undefined ? undefined : { input: epilogue.bias };
        return { outputShapes: [outShape], dispatches: [{ ...dispatch, bindings: gemmBindings(weights ? { value: weights.name } : { input: 1 }, bias, epilogue?.residual) }] };
      },
    };
  },
};

export const gemmOperator: OperatorSpec = {
  // `broadcast` is the opset < 7 flag for what later opsets always do.
  attributes: ['alpha', 'beta', 'transA', 'transB', 'broadcast'],
  inputs: [2, 3],
  types: sameAsInput,
  device(context) {
    const { node } = context;
    const type = floatStorage(context);
    const attributes = {
      alpha: floatAttribute(node, 'alpha', 1),
      beta: floatAttribute(node, 'beta', 1),
      transA: booleanAttribute(node, 'transA'),
      transB: booleanAttribute(node, 'transB'),
    };
    const epilogue = context.epilogue;
    // The node's own C, not a fused bias appended after a Gemm's two inputs (which lands at index 2).
    const hasC = Boolean(node.input[2]);
    if (hasC && epilogue?.bias !== undefined) throw new Error('a Gemm with C takes no fused bias');
    const weights = paddedWeights(context, 1, attributes.transB);
    const variants = gemmVariants({
      algorithm: context.traits.gemmAlgorithm, fetcher: 'dense', type, bVec4: Boolean(weights),
      hasBias: hasC || epilogue?.bias !== undefined, hasResidual: epilogue?.residual !== undefined,
    });
    return {
      kind: 'kernel',
      variants,
      plan(inputs, maxPerDimension) {
        const cShape = hasC ? required(inputs, 2).shape : undefined;
        const { outShape, problem } = gemmShapes(required(inputs, 0).shape, required(inputs, 1).shape, cShape, attributes);
        // The padded weights are already [K, N] whatever transB said.
        if (weights) delete problem.bStrides;
        let bias: BindingRef | undefined = hasC ? { input: 2 } : undefined;
        if (epilogue?.bias !== undefined) {
          problem.biasStrides = biasStrides(required(inputs, epilogue.bias).shape, problem.m, problem.n, 'the fused bias');
          problem.beta = 1;
          bias = { input: epilogue.bias };
        }
        checkResidual(inputs, epilogue?.residual, outShape);
        const dispatch = matmulDispatch(context.traits.gemmAlgorithm, problem, weights?.rowVec4s, epilogue?.activation ?? IDENTITY, maxPerDimension);
        return { outputShapes: [outShape], dispatches: [{ ...dispatch, bindings: gemmBindings(weights ? { value: weights.name } : { input: 1 }, bias, epilogue?.residual) }] };
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Windows: shared attribute reading

interface WindowSetup {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
  autoPad: AutoPad;
}

/** kernel_shape / strides / dilations / pads / auto_pad for `spatial` dims (1 or 2). */
function windowAttributes(node: NodeProto, spatial: number, kernelFallback?: number[]): WindowSetup {
  const kernel = intsAttribute(node, 'kernel_shape') ?? kernelFallback;
  if (!kernel) throw invalidNode(node, 'kernel_shape is required');
  if (kernel.length !== spatial) throw invalidNode(node, `kernel_shape [${kernel}] has ${kernel.length} dims, the input ${spatial} spatial dims`);
  const list = (name: string, length: number, fallback: number) => {
    const values = intsAttribute(node, name) ?? new Array<number>(length).fill(fallback);
    if (values.length !== length) throw invalidNode(node, `${name} [${values}] needs ${length} values`);
    return values;
  };
  return {
    kernel,
    strides: list('strides', spatial, 1),
    dilations: list('dilations', spatial, 1),
    pads: list('pads', 2 * spatial, 0),
    autoPad: enumAttribute(node, 'auto_pad', ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'], 'NOTSET'),
  };
}

/** The spatial rank of a window operator from its weights or kernel_shape; only 1-D and 2-D run. */
function spatialRank(node: NodeProto, rank: number | undefined): number {
  const spatial = rank ?? intsAttribute(node, 'kernel_shape')?.length;
  if (spatial === undefined) throw invalidNode(node, 'kernel_shape is required');
  if (spatial !== 1 && spatial !== 2) throw unsupported(node, `${spatial}-D windows (1-D and 2-D are supported)`);
  return spatial;
}

/** 1-D windows run as 2-D ones of height 1. */
function as2d(spatial: number, values: readonly number[], fill: number): [number, number] {
  return spatial === 1 ? [fill, values[0]] : [values[0], values[1]];
}

// ---------------------------------------------------------------------------------------------
// Conv

export const convOperator: OperatorSpec = {
  attributes: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'],
  inputs: [2, 3],
  types: sameAsInput,
  device(context) {
    const { node } = context;
    const type = floatStorage(context);
    const { values: weights, shape: wShape } = constantFloats(context, 1, 'weights');
    const spatial = spatialRank(node, wShape.length - 2);
    const window = windowAttributes(node, spatial, wShape.slice(2));
    if (window.kernel.some((size, dim) => size !== wShape[2 + dim])) throw invalidNode(node, `kernel_shape [${window.kernel}] differs from the weights [${wShape}]`);
    const groups = intAttribute(node, 'group', 1);
    const [outChannels, inPerGroup] = wShape;
    if (groups < 1 || outChannels % groups !== 0) throw invalidNode(node, `group ${groups} does not divide ${outChannels} output channels`);
    const epilogue = context.epilogue;
    // The node's own bias is input 2 only when the node has one: fused values are appended after
    // the node's inputs, so a residual fused into a Conv without bias also sits at index 2.
    const biasInput = epilogue?.bias ?? (node.input[2] ? 2 : undefined);
    const hasResidual = epilogue?.residual !== undefined;
    const depthwise = groups > 1 && inPerGroup === 1;
    const [kernelH, kernelW] = as2d(spatial, window.kernel, 1);
    let variants: KernelVariant[];
    let weightsName: string;
    if (depthwise) {
      variants = [depthwiseVariant(type, biasInput !== undefined, hasResidual)];
      weightsName = context.addConstant('weights', fp32(wShape, weights));
    } else {
      const k = inPerGroup * kernelH * kernelW;
      const laidOut = convWeightsForGemm(weights, outChannels, groups, k);
      weightsName = context.addConstant('weights_for_gemm', fp32([laidOut.length], laidOut));
      variants = gemmVariants({ algorithm: context.traits.gemmAlgorithm, fetcher: 'conv', type, bVec4: true, hasBias: biasInput !== undefined, hasResidual });
    }
    return {
      kind: 'kernel',
      variants,
      plan(inputs, maxPerDimension) {
        const xShape = required(inputs, 0).shape;
        if (xShape.length !== spatial + 2) throw invalidArgument(`Conv input [${xShape}] needs ${spatial + 2} dims`);
        const [batch, inChannels] = xShape;
        if (inChannels !== inPerGroup * groups) throw invalidArgument(`Conv input has ${inChannels} channels, the weights expect ${inPerGroup * groups}`);
        if (biasInput !== undefined && product(required(inputs, biasInput).shape) !== outChannels) {
          throw invalidArgument(`Conv bias needs ${outChannels} values`);
        }
        const { outSpatial, padBegin } = windowGeometry(xShape.slice(2), window);
        const outShape = [batch, outChannels, ...outSpatial];
        checkResidual(inputs, epilogue?.residual, outShape);
        const [inH, inW] = as2d(spatial, xShape.slice(2), 1);
        const [outH, outW] = as2d(spatial, outSpatial, 1);
        const [strideH, strideW] = as2d(spatial, window.strides, 1);
        const [dilationH, dilationW] = as2d(spatial, window.dilations, 1);
        const [padTop, padLeft] = as2d(spatial, padBegin, 0);
        const problem: ConvProblem = {
          batch, inChannels, inH, inW, outChannels, groups, kernelH, kernelW, strideH, strideW, padTop, padLeft, dilationH, dilationW, outH, outW,
        };
        const activation = epilogue?.activation ?? IDENTITY;
        const bias: BindingRef = biasInput === undefined ? { placeholder: true } : { input: biasInput };
        const residual: BindingRef = epilogue?.residual === undefined ? { placeholder: true } : { input: epilogue.residual };
        const dispatch = depthwise ? depthwiseDispatch(problem, activation, maxPerDimension) : convDispatch(context.traits.gemmAlgorithm, problem, activation, maxPerDimension);
        const bindings: BindingRef[] = [{ input: 0 }, { value: weightsName }, bias, residual, { output: 0 }];
        return { outputShapes: [outShape], dispatches: [{ ...dispatch, bindings }] };
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// ConvTranspose

export const convTransposeOperator: OperatorSpec = {
  attributes: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'output_padding', 'output_shape', 'pads', 'strides'],
  inputs: [2, 3],
  types: sameAsInput,
  device(context) {
    const { node } = context;
    const type = floatStorage(context);
    const wConstant = context.inputs[1]?.constant;
    const spatial = spatialRank(node, wConstant ? wConstant.shape.length - 2 : undefined);
    const window = windowAttributes(node, spatial, wConstant?.shape.slice(2));
    const outputPadding = intsAttribute(node, 'output_padding') ?? new Array<number>(spatial).fill(0);
    const outputShape = intsAttribute(node, 'output_shape');
    const groups = intAttribute(node, 'group', 1);
    const hasBias = Boolean(node.input[2]);
    const activation = context.epilogue?.activation ?? IDENTITY;
    return {
      kind: 'kernel',
      variants: [convTransposeVariant(type, hasBias)],
      plan(inputs, maxPerDimension) {
        const xShape = required(inputs, 0).shape;
        const wShape = required(inputs, 1).shape;
        if (xShape.length !== spatial + 2 || wShape.length !== spatial + 2) throw invalidArgument(`ConvTranspose needs ${spatial + 2}-D input and weights`);
        const [batch, inChannels] = xShape;
        if (wShape[0] !== inChannels || inChannels % groups !== 0) throw invalidArgument(`ConvTranspose weights [${wShape}] do not match ${inChannels} input channels in ${groups} groups`);
        const outChannels = wShape[1] * groups;
        const geometry = convTransposeGeometry(xShape.slice(2), {
          ...window, kernel: wShape.slice(2), outputPadding,
          outputShape: outputShape ? outputShape.slice(-spatial) : undefined,
        });
        const outShape = [batch, outChannels, ...geometry.outSpatial];
        const [inH, inW] = as2d(spatial, xShape.slice(2), 1);
        const [outH, outW] = as2d(spatial, geometry.outSpatial, 1);
        const [kernelH, kernelW] = as2d(spatial, wShape.slice(2), 1);
        const [strideH, strideW] = as2d(spatial, window.strides, 1);
        const [dilationH, dilationW] = as2d(spatial, window.dilations, 1);
        const [padTop, padLeft] = as2d(spatial, geometry.padBegin, 0);
        const problem: ConvProblem = {
          batch, inChannels, inH, inW, outChannels, groups, kernelH, kernelW, strideH, strideW, padTop, padLeft, dilationH, dilationW, outH, outW,
        };
        return {
          outputShapes: [outShape],
          dispatches: [{
            ...convTransposeDispatch(problem, activation, maxPerDimension),
            bindings: [{ input: 0 }, { input: 1 }, hasBias ? { input: 2 } : { placeholder: true }, { output: 0 }],
          }],
        };
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// BatchNormalization (inference) and pools

/** Per-channel scale and shift of an inference BatchNormalization: y = x * scale + shift. */
export function foldBatchNorm(gamma: Float32Array, beta: Float32Array, mean: Float32Array, variance: Float32Array, epsilon: number) {
  const scale = new Float32Array(gamma.length);
  const shift = new Float32Array(gamma.length);
  for (let c = 0; c < gamma.length; c++) {
    scale[c] = gamma[c] / Math.sqrt(variance[c] + epsilon);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  return { scale, shift };
}

export const batchNormOperator: OperatorSpec = {
  attributes: ['epsilon', 'momentum', 'training_mode', 'spatial'],
  inputs: [5, 5],
  outputs: [1, 5],
  types: sameAsInput,
  validate(node) {
    if (intAttribute(node, 'training_mode', 0) !== 0) throw unsupported(node, 'training_mode=1 (inference only)');
    if (intAttribute(node, 'spatial', 1) !== 1) throw unsupported(node, 'spatial=0');
  },
  device(context) {
    const type = floatStorage(context);
    const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((index) => constantFloats(context, index, 'statistics').values);
    const { scale, shift } = foldBatchNorm(gamma, beta, mean, variance, floatAttribute(context.node, 'epsilon', 1e-5));
    const scaleName = context.addConstant('scale', fp32([scale.length], scale));
    const shiftName = context.addConstant('shift', fp32([shift.length], shift));
    const activation = context.epilogue?.activation ?? IDENTITY;
    return {
      kind: 'kernel',
      variants: [channelAffineVariant(type)],
      plan(inputs, maxPerDimension) {
        const shape = [...required(inputs, 0).shape];
        if (shape.length < 2 || shape[1] !== scale.length) throw invalidArgument(`BatchNormalization input [${shape}] needs ${scale.length} channels in dim 1`);
        return {
          outputShapes: [shape],
          dispatches: [{ ...channelAffineDispatch(shape, activation, maxPerDimension), bindings: [{ input: 0 }, { value: scaleName }, { value: shiftName }, { output: 0 }] }],
        };
      },
    };
  },
};

export function poolOperator(isMax: boolean): OperatorSpec {
  return {
    attributes: isMax
      ? ['auto_pad', 'ceil_mode', 'dilations', 'kernel_shape', 'pads', 'storage_order', 'strides']
      : ['auto_pad', 'ceil_mode', 'count_include_pad', 'dilations', 'kernel_shape', 'pads', 'strides'],
    inputs: [1, 1],
    outputs: isMax ? [1, 2] : [1, 1],
    types: sameAsInput,
    device(context) {
      const { node } = context;
      const type = floatStorage(context);
      const spatial = spatialRank(node, undefined);
      const window = windowAttributes(node, spatial);
      const ceilMode = booleanAttribute(node, 'ceil_mode');
      const countIncludePad = !isMax && booleanAttribute(node, 'count_include_pad');
      return {
        kind: 'kernel',
        variants: [poolVariant(type, isMax)],
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
          const kernel: PlannedKernel = { ...dispatch, bindings: [{ input: 0 }, { output: 0 }] };
          return { outputShapes: [outShape], dispatches: [kernel] };
        },
      };
    },
  };
}
