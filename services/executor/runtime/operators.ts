/**
 * The supported ONNX operators. For each: the attributes it understands (anything else fails the
 * load), its input and output counts, output datatypes, which inputs are parameters read on the
 * host (Reshape's shape, Slice's starts, ...), a CPU implementation when it can fold constants
 * or shape subgraphs, and how it runs on the GPU: a kernel (pipeline variants plus per-shape
 * dispatches) or an alias (a new shape over the same buffer).
 */
import { datatypeOfOnnxCode, type Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import {
  COPY_MAX_RANK, copyDispatch, copyVariants, gatherDispatch, gatherVariant, PAD_MODES, padDispatch, padVariant, type CopyProblem, type PadMode,
} from '../kernels/data.ts';
import {
  BINARY_OPS, binaryDispatch, binaryVariant, INTEGER_BINARY_OPS, unaryDispatch, unaryVariant,
  whereDispatch, whereVariant, type BinaryOpName, type UnaryMode,
} from '../kernels/elementwise.ts';
import type { Dispatch, KernelVariant, StorageType } from '../kernels/kernel.ts';
import {
  layerNormDispatch, layerNormVariants, reduceDispatch, reduceVariants, ROW_KERNEL_MAX_LENGTH, softmaxDispatch, softmaxVariants, type ReduceOp,
} from '../kernels/reduce.ts';
import { IDENTITY, INTEGER_UNARY_OPS, ONNX_UNARY, UNARY_OPS, unaryFunction, type UnaryFunction } from '../kernels/unary-ops.ts';
import {
  booleanAttribute, enumAttribute, floatAttribute, intAttribute, intsAttribute, invalidNode, stringAttribute, tensorAttribute, unsupported,
} from './attributes.ts';
import {
  axesOf, CPU_OPS, padParameters, reshapeTarget, sliceParameters, splitOf, SHAPE_OPS, type CpuOp,
} from './cpu-ops.ts';
import { convOperator, convTransposeOperator, batchNormOperator, gemmOperator, matMulOperator, poolOperator } from './operators-gemm.ts';
import {
  broadcastShapes, broadcastStrides, concatShape, flattenShape, gatherShape, mergeDims, normalizeAxis, padAmounts, product, reduceShape, reshapeShape,
  sliceAxes, softmaxProblem, splitSizes, squeezeShape, stridesOf, tileShape, transposeShape, unsqueezeShape,
} from './shapes.ts';
import { kindOf, storageOf, toNumbers, type Precision } from './values.ts';
import type { GemmAlgorithm } from '../kernels/matmul.ts';

/** Where a value lives: known when the model loads, computed on the CPU per input shape, or on the GPU. */
export type Location = 'constant' | 'host' | 'device';

/** One node input as an operator sees it when the model loads. */
export interface LoadInput {
  readonly name: string | undefined;
  readonly datatype: Datatype | undefined;
  readonly location: Location | undefined;
  /** The value, when it is known at load time. */
  readonly constant: HostTensor | undefined;
}

/**
 * Fused work an operator takes over from the nodes after it (and, for MatMul, the Transposes
 * before it). Bias and residual are indices into the operator's inputs: the graph compiler
 * appends those values after the node's own inputs.
 */
export interface Epilogue {
  readonly activation: UnaryFunction;
  /** A 1-D per-column (MatMul / Gemm) or per-channel (Conv) bias; replaces the node's own bias. */
  readonly bias?: number;
  /** A value with exactly the output's shape, added before the activation. */
  readonly residual?: number;
  /**
   * Softmax / LogSoftmax only: a constant factor the input is multiplied by first (a Mul or Div
   * by a scalar constant before the node, such as attention's 1 / sqrt(d)).
   */
  readonly inputScale?: number;
  /**
   * MatMul only: a Transpose folded into operand A / B. The operator's input is the Transpose's
   * input, read through the permutation (strides) instead of a transposed copy.
   */
  readonly aPerm?: readonly number[];
  readonly bPerm?: readonly number[];
}

/** What the executor knows about the GPU that changes which kernels an operator picks. */
export interface GpuTraits {
  readonly gemmAlgorithm: GemmAlgorithm;
}

/**
 * The longest row the row kernels (Softmax, LayerNormalization: one invocation per row) take.
 * The simd GEMM is chosen exactly for GPUs that are a CPU's SIMD units (lavapipe), where
 * barriers and workgroup memory are slow loops over the lanes, so it selects the longer limit.
 */
function rowKernelMaxLength(traits: GpuTraits): number {
  return traits.gemmAlgorithm === 'simd' ? ROW_KERNEL_MAX_LENGTH.cpuSimd : ROW_KERNEL_MAX_LENGTH.gpu;
}

export interface LoadContext {
  readonly node: NodeProto;
  readonly opset: number;
  readonly precision: Precision;
  readonly inputs: readonly LoadInput[];
  readonly outputTypes: readonly Datatype[];
  readonly traits: GpuTraits;
  /** Registers a constant derived at load time (re-laid-out weights, ...) and returns its name. */
  addConstant(suffix: string, tensor: HostTensor): string;
  /** Work fused into this node by the graph compiler (GEMM-like and binary operators only). */
  readonly epilogue?: Epilogue;
}

/** One node input as an operator sees it per input shape. */
export interface PlanInput {
  readonly shape: readonly number[];
  /** The value, when it is known on the host (constants and shape computations). */
  readonly value: HostTensor | undefined;
}

/** What a binding of a planned dispatch reads or writes. */
export type BindingRef =
  | { readonly input: number }
  | { readonly output: number }
  | { readonly value: string }
  | { readonly scratch: number }
  | { readonly placeholder: true };

export interface PlannedKernel extends Dispatch {
  /** One per binding of the variant except the uniform block, in binding order. */
  readonly bindings: readonly BindingRef[];
}

export interface OperatorPlan {
  readonly outputShapes: number[][];
  readonly dispatches: readonly PlannedKernel[];
  /** Scratch tensors (element counts, stored like output 0) the dispatches may use. */
  readonly scratch?: readonly number[];
}

/** A node as the GPU runs it. */
export interface DeviceOperator {
  /** 'alias': output 0 is input 0's buffer under a new shape; no dispatch. */
  readonly kind: 'kernel' | 'alias';
  /** Every pipeline variant a dispatch may pick (PlannedKernel.variant indexes this). */
  readonly variants: readonly KernelVariant[];
  /** Output shapes and dispatches for these input shapes; throws INVALID_ARGUMENT / RangeError. */
  plan(inputs: ReadonlyArray<PlanInput | undefined>, maxPerDimension: number): OperatorPlan;
}

interface TypeContext {
  readonly node: NodeProto;
  readonly inputTypes: ReadonlyArray<Datatype | undefined>;
}

export interface OperatorSpec {
  /** Attribute names the implementation understands; any other attribute is refused. */
  readonly attributes: readonly string[];
  /** Allowed input counts, [min, max] (trailing '' inputs count as absent). */
  readonly inputs: readonly [number, number];
  /** Allowed output counts; outputs past the first must be unused. Default [1, 1]. */
  readonly outputs?: readonly [number, number];
  /** Inputs read on the host (they must be known before the GPU runs). */
  readonly parameters?: readonly number[];
  types(context: TypeContext): Datatype[];
  /** Checks attribute values at load time (for operators that may run on the CPU only). */
  validate?(node: NodeProto, opset: number): void;
  readonly cpu?: CpuOp;
  device?(context: LoadContext): DeviceOperator;
}

const required = (inputs: ReadonlyArray<PlanInput | undefined>, index: number): PlanInput => {
  const input = inputs[index];
  if (!input) throw new Error(`input ${index} is absent`);
  return input;
};

/** The host value of a parameter input (known per plan). */
export function parameter(inputs: ReadonlyArray<PlanInput | undefined>, index: number): HostTensor | undefined {
  return inputs[index]?.value;
}

const sameAsInput = ({ inputTypes }: TypeContext): Datatype[] => [inputTypes[0] ?? 'FP32'];
const boolOutput = (): Datatype[] => ['BOOL'];

/** The storage type of input `index`. */
function inputStorage(context: LoadContext, index: number): StorageType {
  const datatype = context.inputs[index]?.datatype;
  if (!datatype) throw invalidNode(context.node, `input ${index} has no type`);
  return storageOf(datatype, context.precision);
}

function outputStorage(context: LoadContext, index = 0): StorageType {
  return storageOf(context.outputTypes[index], context.precision);
}

const io = (inputs: number, outputs = 1): BindingRef[] => [
  ...Array.from({ length: inputs }, (_, input) => ({ input })), ...Array.from({ length: outputs }, (_, output) => ({ output })),
];

function alias(shapeOf: (inputs: ReadonlyArray<PlanInput | undefined>) => number[]): DeviceOperator {
  return { kind: 'alias', variants: [], plan: (inputs) => ({ outputShapes: [shapeOf(inputs)], dispatches: [] }) };
}

// ---------------------------------------------------------------------------------------------
// Element-wise

function unarySpec(opType: string): OperatorSpec {
  const entry = ONNX_UNARY[opType];
  const attributes = opType === 'Gelu' ? ['approximate'] : Object.keys(entry?.attributes ?? {});
  return {
    attributes,
    inputs: [1, 1],
    types: opType === 'Not' ? boolOutput : sameAsInput,
    validate(node) {
      if (opType === 'Gelu') enumAttribute(node, 'approximate', ['none', 'tanh'], 'none');
    },
    cpu: CPU_OPS.get(opType),
    device(context) {
      const { node } = context;
      const values: Record<string, number | string> = {};
      for (const name of attributes) {
        values[name] = name === 'approximate' ? stringAttribute(node, name, 'none') : floatAttribute(node, name, entry.attributes[name]);
      }
      const fn = unaryFunction(opType, values);
      const kind = kindOf(context.inputs[0].datatype!);
      let mode: UnaryMode = 'float';
      if (kind !== 'float') {
        if (!INTEGER_UNARY_OPS.has(opType) && opType !== 'Not') throw unsupported(node, `${context.inputs[0].datatype} input`);
        mode = 'integer';
      }
      const storage = inputStorage(context, 0);
      return {
        kind: 'kernel',
        variants: [unaryVariant(storage, outputStorage(context), mode)],
        plan(inputs, maxPerDimension) {
          const shape = [...required(inputs, 0).shape];
          return { outputShapes: [shape], dispatches: [{ ...unaryDispatch(product(shape), fn, maxPerDimension), bindings: io(1) }] };
        },
      };
    },
  };
}

const clipSpec: OperatorSpec = {
  attributes: ['min', 'max'],
  inputs: [1, 3],
  parameters: [1, 2],
  types: sameAsInput,
  cpu: CPU_OPS.get('Clip'),
  device(context) {
    const { node } = context;
    if (kindOf(context.inputs[0].datatype!) !== 'float') throw unsupported(node, `${context.inputs[0].datatype} input`);
    const storage = inputStorage(context, 0);
    return {
      kind: 'kernel',
      variants: [unaryVariant(storage, storage, 'float')],
      plan(inputs, maxPerDimension) {
        const shape = [...required(inputs, 0).shape];
        const bound = (index: number, name: string, fallback: number) => {
          const tensor = parameter(inputs, index);
          return tensor ? toNumbers(tensor)[0] : floatAttribute(node, name, fallback);
        };
        const fn = unaryFunction('Clip', { min: bound(1, 'min', -3.4028234663852886e38), max: bound(2, 'max', 3.4028234663852886e38) });
        return { outputShapes: [shape], dispatches: [{ ...unaryDispatch(product(shape), fn, maxPerDimension), bindings: io(1) }] };
      },
    };
  },
};

/** The unary op that rounds f32 values to a narrower float datatype. */
const NARROW_FLOAT_ROUNDING: Partial<Record<Datatype, number>> = { FP16: UNARY_OPS.RoundToFloat16, BF16: UNARY_OPS.RoundToBfloat16 };

const castSpec: OperatorSpec = {
  attributes: ['to', 'saturate'],
  inputs: [1, 1],
  types: ({ node }) => [datatypeOfOnnxCode(intAttribute(node, 'to', 1))],
  validate(node) {
    const to = datatypeOfOnnxCode(intAttribute(node, 'to', 1));
    if (to === 'BYTES') throw unsupported(node, 'to=STRING');
  },
  cpu: CPU_OPS.get('Cast'),
  device(context) {
    const from = kindOf(context.inputs[0].datatype!);
    const to = kindOf(context.outputTypes[0]);
    const mode: UnaryMode = to === 'bool' ? 'toBoolean' : to === 'int' ? 'integer' : 'float';
    const variant = unaryVariant(inputStorage(context, 0), outputStorage(context), from === 'bool' && to === 'int' ? 'integer' : mode);
    // Narrow floats live in wider storage (f32, or f16 for BFLOAT16), so the cast itself rounds.
    const narrow = NARROW_FLOAT_ROUNDING[context.outputTypes[0]];
    const fn = narrow === undefined || context.inputs[0].datatype === context.outputTypes[0] ? IDENTITY : { op: narrow, alpha: 0, beta: 0 };
    return {
      kind: 'kernel',
      variants: [variant],
      plan(inputs, maxPerDimension) {
        const shape = [...required(inputs, 0).shape];
        return { outputShapes: [shape], dispatches: [{ ...unaryDispatch(product(shape), fn, maxPerDimension), bindings: io(1) }] };
      },
    };
  },
};

function binarySpec(opType: BinaryOpName, variadic = false): OperatorSpec {
  const comparison = ['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor'].includes(opType);
  return {
    attributes: [],
    inputs: variadic ? [1, 2 ** 31] : [2, 2],
    types: comparison ? boolOutput : sameAsInput,
    cpu: CPU_OPS.get(opType),
    device(context) {
      const { node } = context;
      const kind = kindOf(context.inputs[0].datatype!);
      const integerMath = kind !== 'float';
      if (integerMath && !INTEGER_BINARY_OPS.has(opType)) throw unsupported(node, `${context.inputs[0].datatype} inputs`);
      if (!integerMath && ['And', 'Or', 'Xor'].includes(opType)) throw unsupported(node, `${context.inputs[0].datatype} inputs`);
      const activation = context.epilogue?.activation ?? IDENTITY;
      const storages = context.inputs.map((_, index) => inputStorage(context, index));
      const out = outputStorage(context);
      // A variadic Min / Max folds left to right; intermediates are scratch tensors of the
      // output's type (so chained steps read what the previous one wrote).
      const variants = [binaryVariant(storages[0], storages[1] ?? storages[0], out, integerMath)];
      if (storages.length > 2) variants.push(binaryVariant(out, storages[2], out, integerMath));
      const op = BINARY_OPS[opType];
      return {
        kind: context.inputs.length === 1 ? 'alias' : 'kernel',
        variants: context.inputs.length === 1 ? [] : variants,
        plan(inputs, maxPerDimension) {
          const shapes = inputs.map((input) => input!.shape);
          if (shapes.length === 1) return { outputShapes: [[...shapes[0]]], dispatches: [] };
          const dispatches: PlannedKernel[] = [];
          const scratch: number[] = [];
          let leftShape = shapes[0];
          let left: BindingRef = { input: 0 };
          for (let index = 1; index < shapes.length; index++) {
            const outShape = broadcastShapes(leftShape, shapes[index]);
            const last = index === shapes.length - 1;
            const target: BindingRef = last ? { output: 0 } : { scratch: scratch.push(product(outShape)) - 1 };
            dispatches.push({
              ...binaryDispatch(op, last ? activation : IDENTITY, leftShape, shapes[index], outShape, maxPerDimension),
              variant: index === 1 ? 0 : 1,
              bindings: [left, { input: index }, target],
            });
            left = target;
            leftShape = outShape;
          }
          return { outputShapes: [[...leftShape]], dispatches, scratch };
        },
      };
    },
  };
}

const whereSpec: OperatorSpec = {
  attributes: [],
  inputs: [3, 3],
  types: ({ inputTypes }) => [inputTypes[1] ?? 'FP32'],
  cpu: CPU_OPS.get('Where'),
  device(context) {
    return {
      kind: 'kernel',
      variants: [whereVariant(outputStorage(context))],
      plan(inputs, maxPerDimension) {
        const [c, x, y] = [0, 1, 2].map((index) => required(inputs, index).shape);
        const outShape = broadcastShapes(c, x, y);
        return { outputShapes: [outShape], dispatches: [{ ...whereDispatch(c, x, y, outShape, maxPerDimension), bindings: io(3) }] };
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Rows: softmax, layer normalization, reductions

function softmaxSpec(logOutput: boolean): OperatorSpec {
  return {
    attributes: ['axis'],
    inputs: [1, 1],
    types: sameAsInput,
    device(context) {
      const { node, opset } = context;
      const axis = intAttribute(node, 'axis', opset >= 13 ? -1 : 1);
      if (kindOf(context.inputs[0].datatype!) !== 'float') throw unsupported(node, `${context.inputs[0].datatype} input`);
      const options = { scale: context.epilogue?.inputScale ?? 1, maxRowLength: rowKernelMaxLength(context.traits) };
      return {
        kind: 'kernel',
        variants: softmaxVariants(inputStorage(context, 0)),
        plan(inputs, maxPerDimension) {
          const shape = [...required(inputs, 0).shape];
          return {
            outputShapes: [shape],
            dispatches: [{ ...softmaxDispatch(softmaxProblem(shape, axis, opset), logOutput, maxPerDimension, options), bindings: io(1) }],
          };
        },
      };
    },
  };
}

const layerNormSpec: OperatorSpec = {
  attributes: ['axis', 'epsilon', 'stash_type'],
  inputs: [2, 3],
  outputs: [1, 3],
  types: sameAsInput,
  device(context) {
    const { node } = context;
    const axis = intAttribute(node, 'axis', -1);
    const epsilon = floatAttribute(node, 'epsilon', 1e-5);
    const hasBias = Boolean(context.inputs[2]?.name);
    const storage = inputStorage(context, 0);
    const maxRowLength = rowKernelMaxLength(context.traits);
    return {
      kind: 'kernel',
      variants: layerNormVariants(storage, hasBias),
      plan(inputs, maxPerDimension) {
        const shape = [...required(inputs, 0).shape];
        const split = normalizeAxis(axis, shape.length);
        const rows = product(shape.slice(0, split));
        const length = product(shape.slice(split));
        const scaleCount = product(required(inputs, 1).shape);
        const biasCount = hasBias ? product(required(inputs, 2).shape) : 1;
        for (const [what, count] of [['Scale', scaleCount], ['B', biasCount]] as const) {
          if (count !== length && count !== 1) throw invalidArgument(`LayerNormalization ${what} has ${count} elements, the normalized dims ${length}`);
        }
        return {
          outputShapes: [shape],
          dispatches: [{
            ...layerNormDispatch(rows, length, epsilon, scaleCount, biasCount, maxPerDimension, maxRowLength),
            bindings: [{ input: 0 }, { input: 1 }, hasBias ? { input: 2 } : { placeholder: true }, { output: 0 }],
          }],
        };
      },
    };
  },
};

const REDUCE_OP_OF: Record<string, ReduceOp> = {
  ReduceSum: 'sum', ReduceMean: 'mean', ReduceMax: 'max', ReduceMin: 'min', ReduceProd: 'prod',
};

function reduceSpec(opType: string): OperatorSpec {
  return {
    attributes: ['axes', 'keepdims', 'noop_with_empty_axes'],
    inputs: [1, 2],
    parameters: [1],
    types: sameAsInput,
    cpu: CPU_OPS.get(opType),
    device(context) {
      const { node, opset } = context;
      const keepDims = booleanAttribute(node, 'keepdims', true);
      const noop = booleanAttribute(node, 'noop_with_empty_axes', false);
      const variants = reduceVariants(inputStorage(context, 0));
      return {
        kind: 'kernel',
        variants,
        plan(inputs, maxPerDimension) {
          const shape = required(inputs, 0).shape;
          const axesInput = parameter(inputs, 1);
          const { outShape, axes } = reduceShape(shape, axesOf({ node, opset, inputs: [undefined, axesInput ? { tensor: axesInput } : undefined] }, 1,
            opType === 'ReduceSum' ? 13 : 18), keepDims, noop);
          return { outputShapes: [outShape], dispatches: [{ ...reduceDispatch(shape, axes, REDUCE_OP_OF[opType], maxPerDimension), bindings: io(1) }] };
        },
      };
    },
  };
}

function globalPoolSpec(op: ReduceOp): OperatorSpec {
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

// ---------------------------------------------------------------------------------------------
// Data movement

/**
 * Copy dispatches from input `input` into output `output`: one, unless the walk has more separate
 * dims than the copy kernel unravels (a rank-5 Tile walks 10); then the outermost dims are peeled
 * off, one dispatch per index with its own offsets.
 */
function copyKernels(
  problem: CopyProblem, maxPerDimension: number, input: BindingRef = { input: 0 }, output: BindingRef = { output: 0 },
): PlannedKernel[] {
  if (product(problem.shape) === 0) return [];
  if (mergeDims(problem.shape, [problem.inStrides, problem.outStrides]).shape.length <= COPY_MAX_RANK) {
    return [{ ...copyDispatch(problem, maxPerDimension), bindings: [input, output] }];
  }
  const [size, ...shape] = problem.shape;
  const [inStride, ...inStrides] = problem.inStrides;
  const [outStride, ...outStrides] = problem.outStrides;
  return Array.from({ length: size }, (_, index) => copyKernels({
    shape, inStrides, outStrides, inOffset: problem.inOffset + index * inStride, outOffset: problem.outOffset + index * outStride,
  }, maxPerDimension, input, output)).flat();
}

function copyOperator(context: LoadContext, plan: DeviceOperator['plan']): DeviceOperator {
  return { kind: 'kernel', variants: copyVariants(inputStorage(context, 0)), plan };
}

const transposeSpec: OperatorSpec = {
  attributes: ['perm'],
  inputs: [1, 1],
  types: sameAsInput,
  cpu: CPU_OPS.get('Transpose'),
  device(context) {
    const perm = intsAttribute(context.node, 'perm');
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shape = required(inputs, 0).shape;
      const { outShape, perm: order } = transposeShape(shape, perm);
      const strides = stridesOf(shape);
      return {
        outputShapes: [outShape],
        dispatches: copyKernels({ shape: outShape, inStrides: order.map((axis) => strides[axis]), outStrides: stridesOf(outShape), inOffset: 0, outOffset: 0 }, maxPerDimension),
      };
    });
  },
};

const concatSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [1, 2 ** 31],
  types: sameAsInput,
  cpu: CPU_OPS.get('Concat'),
  device(context) {
    const axisAttribute = intAttribute(context.node, 'axis', 0);
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shapes = inputs.map((input) => input!.shape);
      const { outShape, axis } = concatShape(shapes, axisAttribute);
      const outStrides = stridesOf(outShape);
      let offset = 0;
      const dispatches: PlannedKernel[] = [];
      shapes.forEach((shape, index) => {
        if (product(shape) > 0) {
          dispatches.push(...copyKernels({ shape, inStrides: stridesOf(shape), outStrides, inOffset: 0, outOffset: offset * outStrides[axis] }, maxPerDimension, { input: index }));
        }
        offset += shape[axis];
      });
      return { outputShapes: [outShape], dispatches };
    });
  },
};

const splitSpec: OperatorSpec = {
  attributes: ['axis', 'split', 'num_outputs'],
  inputs: [1, 2],
  outputs: [1, 2 ** 31],
  parameters: [1],
  types: ({ node, inputTypes }) => node.output.map(() => inputTypes[0] ?? 'FP32'),
  cpu: CPU_OPS.get('Split'),
  device(context) {
    const { node, opset } = context;
    const axisAttribute = intAttribute(node, 'axis', 0);
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shape = required(inputs, 0).shape;
      const axis = normalizeAxis(axisAttribute, shape.length);
      const splitInput = parameter(inputs, 1);
      const sizes = splitSizes(shape[axis], node.output.length, splitOf({ node, opset, inputs: [undefined, splitInput ? { tensor: splitInput } : undefined] }));
      const strides = stridesOf(shape);
      let start = 0;
      const outputShapes: number[][] = [];
      const dispatches: PlannedKernel[] = [];
      sizes.forEach((size, output) => {
        const outShape = [...shape];
        outShape[axis] = size;
        outputShapes.push(outShape);
        if (product(outShape) > 0) {
          dispatches.push(...copyKernels({ shape: outShape, inStrides: strides, outStrides: stridesOf(outShape), inOffset: start * strides[axis], outOffset: 0 }, maxPerDimension, { input: 0 }, { output }));
        }
        start += size;
      });
      return { outputShapes, dispatches };
    });
  },
};

const sliceSpec: OperatorSpec = {
  attributes: ['starts', 'ends', 'axes'],
  inputs: [1, 5],
  parameters: [1, 2, 3, 4],
  types: sameAsInput,
  cpu: CPU_OPS.get('Slice'),
  device(context) {
    const { node, opset } = context;
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shape = required(inputs, 0).shape;
      const { starts, ends, axes, steps } = sliceParameters({ node, opset, inputs: inputs.map((input) => (input?.value ? { tensor: input.value } : undefined)) });
      const sliced = sliceAxes(shape, starts, ends, axes, steps);
      const strides = stridesOf(shape);
      const outShape = sliced.map((axis) => axis.count);
      const offset = product(outShape) === 0 ? 0 : sliced.reduce((total, axis, dim) => total + axis.start * strides[dim], 0);
      return {
        outputShapes: [outShape],
        dispatches: copyKernels({
          shape: outShape, inStrides: sliced.map((axis, dim) => axis.step * strides[dim]), outStrides: stridesOf(outShape), inOffset: offset, outOffset: 0,
        }, maxPerDimension),
      };
    });
  },
};

const expandSpec: OperatorSpec = {
  attributes: [],
  inputs: [2, 2],
  parameters: [1],
  types: sameAsInput,
  cpu: CPU_OPS.get('Expand'),
  device(context) {
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shape = required(inputs, 0).shape;
      const target = parameter(inputs, 1);
      if (!target) throw invalidArgument('Expand needs its shape');
      const outShape = broadcastShapes(shape, toNumbers(target));
      return {
        outputShapes: [outShape],
        dispatches: copyKernels({ shape: outShape, inStrides: broadcastStrides(shape, outShape), outStrides: stridesOf(outShape), inOffset: 0, outOffset: 0 }, maxPerDimension),
      };
    });
  },
};

const tileSpec: OperatorSpec = {
  attributes: [],
  inputs: [2, 2],
  parameters: [1],
  types: sameAsInput,
  cpu: CPU_OPS.get('Tile'),
  device(context) {
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shape = required(inputs, 0).shape;
      const repeats = parameter(inputs, 1);
      if (!repeats) throw invalidArgument('Tile needs its repeats');
      const counts = toNumbers(repeats);
      const outShape = tileShape(shape, counts);
      // Each dim d becomes [repeats_d, shape_d]: the repeat walks the output with stride
      // shape_d * outStride_d and the input with stride 0.
      const inStrides = stridesOf(shape);
      const outStrides = stridesOf(outShape);
      const walk: number[] = [];
      const inWalk: number[] = [];
      const outWalk: number[] = [];
      shape.forEach((dim, axis) => {
        walk.push(counts[axis], dim);
        inWalk.push(0, inStrides[axis]);
        outWalk.push(dim * outStrides[axis], outStrides[axis]);
      });
      return {
        outputShapes: [outShape],
        dispatches: copyKernels({ shape: walk, inStrides: inWalk, outStrides: outWalk, inOffset: 0, outOffset: 0 }, maxPerDimension),
      };
    });
  },
};

const gatherSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [2, 2],
  types: sameAsInput,
  cpu: CPU_OPS.get('Gather'),
  device(context) {
    const axisAttribute = intAttribute(context.node, 'axis', 0);
    if (kindOf(context.inputs[1].datatype!) !== 'int') throw unsupported(context.node, `${context.inputs[1].datatype} indices`);
    return {
      kind: 'kernel',
      variants: [gatherVariant(inputStorage(context, 0))],
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        const indicesShape = required(inputs, 1).shape;
        const { outShape, axis } = gatherShape(shape, indicesShape, axisAttribute);
        return {
          outputShapes: [outShape],
          dispatches: [{
            ...gatherDispatch(product(shape.slice(0, axis)), shape[axis], product(indicesShape), product(shape.slice(axis + 1)), maxPerDimension),
            bindings: io(2),
          }],
        };
      },
    };
  },
};

const padSpec: OperatorSpec = {
  attributes: ['mode', 'pads', 'value'],
  inputs: [1, 4],
  parameters: [1, 2, 3],
  types: sameAsInput,
  validate(node) {
    enumAttribute(node, 'mode', ['constant', 'reflect', 'edge', 'wrap'], 'constant');
  },
  cpu: CPU_OPS.get('Pad'),
  device(context) {
    const { node, opset } = context;
    const mode = enumAttribute(node, 'mode', Object.keys(PAD_MODES) as PadMode[], 'constant');
    return {
      kind: 'kernel',
      variants: [padVariant(inputStorage(context, 0))],
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        const { pads, value, axes } = padParameters({ node, opset, inputs: inputs.map((input) => (input?.value ? { tensor: input.value } : undefined)) });
        const { begin, end, outShape } = padAmounts(shape, pads, axes);
        if (mode !== 'constant' && product(shape) === 0 && product(outShape) > 0) throw invalidArgument(`Pad mode '${mode}' of an empty tensor`);
        return { outputShapes: [outShape], dispatches: [{ ...padDispatch(shape, outShape, begin, end, mode, value, maxPerDimension), bindings: io(1) }] };
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Aliases: a new shape over the same buffer

const reshapeSpec: OperatorSpec = {
  // `shape` is the opset < 5 attribute form of the second input.
  attributes: ['allowzero', 'shape'],
  inputs: [1, 2],
  parameters: [1],
  types: sameAsInput,
  cpu: CPU_OPS.get('Reshape'),
  device(context) {
    const { node } = context;
    const allowZero = booleanAttribute(node, 'allowzero');
    return alias((inputs) => reshapeShape(required(inputs, 0).shape, reshapeTarget({ node, inputs: inputs.map((input) => (input?.value ? { tensor: input.value } : undefined)) }), allowZero));
  },
};

const flattenSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [1, 1],
  types: sameAsInput,
  cpu: CPU_OPS.get('Flatten'),
  device(context) {
    const axis = intAttribute(context.node, 'axis', 1);
    return alias((inputs) => flattenShape(required(inputs, 0).shape, axis));
  },
};

function squeezeLikeSpec(opType: 'Squeeze' | 'Unsqueeze'): OperatorSpec {
  return {
    attributes: ['axes'],
    inputs: [1, 2],
    parameters: [1],
    types: sameAsInput,
    cpu: CPU_OPS.get(opType),
    device(context) {
      const { node, opset } = context;
      return alias((inputs) => {
        const axesInput = parameter(inputs, 1);
        const axes = axesOf({ node, opset, inputs: [undefined, axesInput ? { tensor: axesInput } : undefined] });
        const shape = required(inputs, 0).shape;
        if (opType === 'Squeeze') return squeezeShape(shape, axes);
        if (!axes) throw invalidArgument('Unsqueeze needs axes');
        return unsqueezeShape(shape, axes);
      });
    },
  };
}

const identitySpec: OperatorSpec = {
  attributes: [],
  inputs: [1, 1],
  types: sameAsInput,
  cpu: CPU_OPS.get('Identity'),
  device: () => alias((inputs) => [...required(inputs, 0).shape]),
};

const dropoutSpec: OperatorSpec = {
  // Inference: the identity. `seed` only matters in training; `ratio` / `is_test` are opset < 12.
  attributes: ['seed', 'ratio', 'is_test'],
  inputs: [1, 3],
  outputs: [1, 2],
  parameters: [1, 2],
  types: sameAsInput,
  cpu: CPU_OPS.get('Dropout'),
  device(context) {
    // A constant training_mode=true is a property of the model: refuse it at load, not per run.
    const trainingConstant = context.inputs[2]?.constant;
    if (trainingConstant && toNumbers(trainingConstant)[0] !== 0) throw unsupported(context.node, 'training_mode=true');
    return dropoutAlias;
  },
};

/** Dropout in inference; training_mode computed from shapes is only known per plan. */
const dropoutAlias = alias((inputs) => {
  const training = parameter(inputs, 2);
  if (training && toNumbers(training)[0] !== 0) throw invalidArgument('Dropout with training_mode=true is not supported for inference');
  return [...required(inputs, 0).shape];
});

// ---------------------------------------------------------------------------------------------
// Host only: shapes and generated tensors

const shapeSpec: OperatorSpec = { attributes: ['start', 'end'], inputs: [1, 1], types: () => ['INT64'], cpu: CPU_OPS.get('Shape') };
const sizeSpec: OperatorSpec = { attributes: [], inputs: [1, 1], types: () => ['INT64'], cpu: CPU_OPS.get('Size') };
const constantOfShapeSpec: OperatorSpec = {
  attributes: ['value'],
  inputs: [1, 1],
  types: ({ node }) => [tensorAttribute(node, 'value')?.datatype ?? 'FP32'],
  cpu: CPU_OPS.get('ConstantOfShape'),
};
const rangeSpec: OperatorSpec = { attributes: [], inputs: [3, 3], types: sameAsInput, cpu: CPU_OPS.get('Range') };

const OPERATORS: ReadonlyMap<string, OperatorSpec> = new Map<string, OperatorSpec>([
  ...Object.keys(ONNX_UNARY).filter((op) => op !== 'Identity').map((op) => [op, unarySpec(op)] as [string, OperatorSpec]),
  ['Gelu', unarySpec('Gelu')],
  ['Clip', clipSpec],
  ['Cast', castSpec],
  ...(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'PRelu', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor'] as const)
    .map((op) => [op, binarySpec(op)] as [string, OperatorSpec]),
  ['Min', binarySpec('Min', true)],
  ['Max', binarySpec('Max', true)],
  ['Where', whereSpec],
  ['MatMul', matMulOperator],
  ['Gemm', gemmOperator],
  ['Conv', convOperator],
  ['ConvTranspose', convTransposeOperator],
  ['BatchNormalization', batchNormOperator],
  ['MaxPool', poolOperator(true)],
  ['AveragePool', poolOperator(false)],
  ['GlobalAveragePool', globalPoolSpec('mean')],
  ['GlobalMaxPool', globalPoolSpec('max')],
  ['Softmax', softmaxSpec(false)],
  ['LogSoftmax', softmaxSpec(true)],
  ['LayerNormalization', layerNormSpec],
  ...Object.keys(REDUCE_OP_OF).map((op) => [op, reduceSpec(op)] as [string, OperatorSpec]),
  ['Transpose', transposeSpec],
  ['Concat', concatSpec],
  ['Split', splitSpec],
  ['Slice', sliceSpec],
  ['Gather', gatherSpec],
  ['Expand', expandSpec],
  ['Tile', tileSpec],
  ['Pad', padSpec],
  ['Reshape', reshapeSpec],
  ['Flatten', flattenSpec],
  ['Squeeze', squeezeLikeSpec('Squeeze')],
  ['Unsqueeze', squeezeLikeSpec('Unsqueeze')],
  ['Identity', identitySpec],
  ['Dropout', dropoutSpec],
  ['Shape', shapeSpec],
  ['Size', sizeSpec],
  ['ConstantOfShape', constantOfShapeSpec],
  ['Range', rangeSpec],
]);

/** Attribute names the Constant operator accepts. */
const CONSTANT_ATTRIBUTES = ['value', 'value_float', 'value_floats', 'value_int', 'value_ints'];

/** The operator types compileOnnxModel accepts (default ONNX domain). */
export const SUPPORTED_OPERATORS: readonly string[] = [...OPERATORS.keys(), 'Constant'].sort();

function isDefaultDomain(node: NodeProto): boolean {
  return node.domain === '' || node.domain === 'ai.onnx';
}

/** The spec of a supported node; throws FAILED_PRECONDITION naming the operator and node otherwise. */
export function operatorSpec(node: NodeProto): OperatorSpec | undefined {
  if (!isDefaultDomain(node)) throw unsupported(node);
  if (node.opType === 'Constant') return undefined;
  const spec = OPERATORS.get(node.opType);
  if (!spec) throw unsupported(node);
  return spec;
}

/**
 * Throws FAILED_PRECONDITION unless the node's operator, attribute names, input / output counts
 * and attribute values are supported.
 */
export function checkSupported(node: NodeProto, opset: number): void {
  const spec = operatorSpec(node);
  const attributes = spec?.attributes ?? CONSTANT_ATTRIBUTES;
  for (const attribute of node.attribute) {
    if (!attributes.includes(attribute.name)) throw unsupported(node, `attribute '${attribute.name}'`);
  }
  const [minOutputs, maxOutputs] = spec?.outputs ?? [1, 1];
  if (node.output.length < minOutputs || node.output.length > maxOutputs || !node.output[0]) {
    throw invalidNode(node, `has ${node.output.length} outputs, expected ${minOutputs === maxOutputs ? minOutputs : `${minOutputs} to ${maxOutputs}`}`);
  }
  if (!spec) return;
  const inputCount = presentInputCount(node);
  const [min, max] = spec.inputs;
  if (inputCount < min || node.input.length > max) {
    throw invalidNode(node, `has ${node.input.length} inputs, expected ${min === max ? min : `${min} to ${max}`}`);
  }
  spec.validate?.(node, opset);
}

/** Inputs up to the last non-empty name ('' marks an omitted optional input). */
export function presentInputCount(node: NodeProto): number {
  let count = node.input.length;
  while (count > 0 && !node.input[count - 1]) count--;
  return count;
}

/** True for operators that only look at their inputs' shapes. */
export function isShapeOperator(node: NodeProto): boolean {
  return SHAPE_OPS.has(node.opType);
}
