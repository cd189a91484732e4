/**
 * The GEMM-shaped operators (MatMul, Gemm, Conv) and ConvTranspose. Constant weights are
 * re-laid out once at load time into what the kernels read fastest (B rows padded to vec4s,
 * conv weights as [group][K][C_out]); fused biases, residuals and activations run in the
 * kernels' epilogue. Conv weights computed at run time run on the direct window kernel
 * (window-nd.ts), which reads them in place.
 */
import { invalidArgument } from '../../domain/errors.ts';
import {
  convDispatch, type ConvProblem, convTransposeDispatch, convTransposeVariant, convWeightsForGemm, denseWeightsForGemm,
  depthwiseDispatch, depthwiseVariant, gemmVariants, IDENTITY, type KernelVariant, matmulDispatch,
} from '../kernels/index.ts';
import { convTransposeGeometry, numberView, product, sameShape, windowGeometry } from '../tensor/index.ts';
import { booleanAttribute, floatAttribute, intAttribute, intsAttribute, invalidNode } from './attributes.ts';
import type { BindingRef, LoadContext, NodeInput, OperatorSpec } from './contract.ts';
import { biasStrides, gemmShapes, matmulShapes } from './matmul-shapes.ts';
import { required } from './parameters.ts';
import { constantFloats, floatStorage, fp32, sameAsInput } from './spec-parts.ts';
import { as2d, spatialRank, windowAttributes } from './window-attributes.ts';
import { convNdOperator, convTransposeNdOperator, isVolumetric } from './window-nd.ts';

/** Checks that a fused residual has the output's shape (the graph compiler proved it on probe shapes). */
function checkResidual(inputs: ReadonlyArray<NodeInput | undefined>, index: number | undefined, outShape: readonly number[]): void {
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
  const values = denseWeightsForGemm(Float32Array.from(numberView(tensor)), k, n, transposed);
  const rowVec4s = Math.ceil(n / 4);
  return { name: context.addConstant('b_for_gemm', fp32([k, rowVec4s * 4], values)), rowVec4s };
}

export const matMulSpec: OperatorSpec = {
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

export const gemmSpec: OperatorSpec = {
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
// Conv

export const convSpec: OperatorSpec = {
  attributes: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'],
  inputs: [2, 3],
  types: sameAsInput,
  device(context) {
    // Weights computed at run time (a graph input, another node's output) have no load-time
    // layout for the GEMM kernels; the direct window kernel reads them as they are.
    if (isVolumetric(context, true) || !context.inputs[1]?.constant) return convNdOperator(context);
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

export const convTransposeSpec: OperatorSpec = {
  attributes: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'output_padding', 'output_shape', 'pads', 'strides'],
  inputs: [2, 3],
  types: sameAsInput,
  device(context) {
    const { node } = context;
    const wConstant = context.inputs[1]?.constant;
    // Without constant weights or kernel_shape only the run's weight shape tells the spatial
    // rank; the direct window kernel takes whichever it is.
    const rankAtLoad = Boolean(wConstant || intsAttribute(node, 'kernel_shape'));
    if (isVolumetric(context, true) || !rankAtLoad) return convTransposeNdOperator(context);
    const type = floatStorage(context);
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
