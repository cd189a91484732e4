/**
 * FusedMatMul (com.microsoft): Y = alpha * op(A) op(B), op transposing the last two dims when
 * transA / transB say so, on the MatMul kernel: a transposed A (or a B computed at run time) is
 * read through the swap as strides, a constant B is laid out once for the vec4 loader (already
 * transposed), and alpha is the epilogue's scale. transBatchA / transBatchB (moving the batch
 * dim into the rows) are refused unless 0.
 */
import { invalidArgument } from '../../domain/errors.ts';
import { denseWeightsForGemm, gemmVariants, IDENTITY, matmulDispatch, UNARY_OPS } from '../kernels/index.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { numberView, product } from '../tensor/index.ts';
import { booleanAttribute, floatAttribute, unsupported } from './attributes.ts';
import type { BindingRef, DeviceOperator, LoadContext, OperatorSpec } from './contract.ts';
import { matmulShapes } from './matmul-shapes.ts';
import { required } from './parameters.ts';
import { floatStorage, fp32, sameAsInput } from './spec-parts.ts';

/** The permutation swapping the last two of `rank` dims, or undefined below rank 2 (nothing to swap). */
const swapLastTwo = (rank: number): number[] | undefined =>
  (rank < 2 ? undefined : [...Array.from({ length: rank - 2 }, (_, index) => index), rank - 1, rank - 2]);

/** How a contrib GEMM reads its operands: B given at load (re-laid out once) or as input 1. */
export interface GemmOptions {
  readonly transA: boolean;
  readonly transB: boolean;
  readonly alpha: number;
  /** A constant B in place of input 1 (MatMulNBits' dequantized weights); default input 1's constant, if any. */
  readonly constantB?: HostTensor;
  /** The node input holding a 1-D bias of the output's columns, added in the epilogue. */
  readonly bias?: number;
}

/** alpha * op(A) op(B) (+ bias) as one MatMul kernel dispatch. */
export function gemmOperator(context: LoadContext, options: GemmOptions): DeviceOperator {
  const { transA, transB, alpha, bias } = options;
  const type = floatStorage(context);
  const activation = alpha === 1 ? IDENTITY : { op: UNARY_OPS.Scale, alpha, beta: 0 };
  const constantB = options.constantB ?? context.inputs[1]?.constant;
  let weights: { name: string; rowVec4s: number; shape: number[] } | undefined;
  if (constantB?.shape.length === 2) {
    const [rows, cols] = constantB.shape;
    const [k, n] = transB ? [cols, rows] : [rows, cols];
    const values = denseWeightsForGemm(Float32Array.from(numberView(constantB)), k, n, transB);
    const rowVec4s = Math.ceil(n / 4);
    weights = { name: context.addConstant('b_for_gemm', fp32([k, rowVec4s * 4], values)), rowVec4s, shape: [k, n] };
  }
  return {
    kind: 'kernel',
    variants: gemmVariants({ algorithm: context.traits.gemmAlgorithm, fetcher: 'dense', type, hasBias: bias !== undefined, hasResidual: false, bVec4: Boolean(weights) }),
    plan(inputs, maxPerDimension) {
      const aShape = required(inputs, 0).shape;
      const bShape = weights ? weights.shape : required(inputs, 1).shape;
      if ((transA && aShape.length < 2) || (transB && !weights && bShape.length < 2)) {
        throw invalidArgument(`${context.node.opType} transposes an operand of rank 1 ([${aShape}] @ [${bShape}])`);
      }
      const { outShape, problem } = matmulShapes(aShape, bShape, transA ? swapLastTwo(aShape.length) : undefined, transB && !weights ? swapLastTwo(bShape.length) : undefined);
      if (bias !== undefined) {
        const count = product(required(inputs, bias).shape);
        if (count !== problem.n) throw invalidArgument(`${context.node.opType} bias has ${count} elements, the output ${problem.n} columns`);
        problem.biasStrides = [0, 1];
      }
      const dispatch = matmulDispatch(context.traits.gemmAlgorithm, problem, weights?.rowVec4s, activation, maxPerDimension);
      const b: BindingRef = weights ? { value: weights.name } : { input: 1 };
      return {
        outputShapes: [outShape],
        dispatches: [{ ...dispatch, bindings: [{ input: 0 }, b, bias === undefined ? { placeholder: true } : { input: bias }, { placeholder: true }, { output: 0 }] }],
      };
    },
  };
}

export const fusedMatMulSpec: OperatorSpec = {
  attributes: ['alpha', 'transA', 'transB', 'transBatchA', 'transBatchB'],
  inputs: [2, 2],
  types: sameAsInput,
  validate(node) {
    for (const name of ['transBatchA', 'transBatchB']) if (booleanAttribute(node, name)) throw unsupported(node, `${name}=1`);
    booleanAttribute(node, 'transA');
    booleanAttribute(node, 'transB');
  },
  device: (context) => gemmOperator(context, {
    transA: booleanAttribute(context.node, 'transA'), transB: booleanAttribute(context.node, 'transB'), alpha: floatAttribute(context.node, 'alpha', 1),
  }),
};
