/**
 * The element-wise operators on the GPU: unary functions (activations and maths), Clip, Cast,
 * broadcasting binary arithmetic and comparisons (variadic Min / Max folded left to right) and
 * Where. Each also evaluates on the CPU for constants and shape computations.
 */
import { datatypeOfOnnxCode, type Datatype } from '../../onnx/datatypes.ts';
import {
  BINARY_OPS, binaryDispatch, type BinaryOpName, binaryVariant, FUSABLE_ACTIVATIONS, IDENTITY, INTEGER_BINARY_OPS, INTEGER_UNARY_OPS,
  ONNX_UNARY, UNARY_OPS, unaryDispatch, unaryFunction, type UnaryFunction, type UnaryMode, unaryVariant, whereDispatch, whereVariant,
} from '../kernels/index.ts';
import type { NodeProto } from '../../onnx/model.ts';
import { broadcastShapes, kindOf, product } from '../tensor/index.ts';
import { enumAttribute, intAttribute, unsupported } from './attributes.ts';
import type { BindingRef, OperatorSpec, PlannedKernel } from './contract.ts';
import { cpuBinary, cpuCast, cpuClip, cpuUnary, cpuWhere } from './cpu-elementwise.ts';
import { clipBound, required, unaryAttributes, type ParameterInputs } from './parameters.ts';
import { boolOutput, inputStorage, io, outputStorage, sameAsInput } from './spec-parts.ts';

/** The largest finite f32: Clip's default bounds on the GPU. */
const F32_MAX = 3.4028234663852886e38;

export function unarySpec(opType: string): OperatorSpec {
  const entry = ONNX_UNARY[opType];
  const attributes = opType === 'Gelu' ? ['approximate'] : Object.keys(entry?.attributes ?? {});
  return {
    attributes,
    inputs: [1, 1],
    types: opType === 'Not' ? boolOutput : sameAsInput,
    validate(node) {
      if (opType === 'Gelu') enumAttribute(node, 'approximate', ['none', 'tanh'], 'none');
    },
    cpu: cpuUnary(opType),
    device(context) {
      const { node } = context;
      const fn = unaryFunction(opType, unaryAttributes(node));
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

export const clipSpec: OperatorSpec = {
  attributes: ['min', 'max'],
  inputs: [1, 3],
  parameters: [1, 2],
  types: sameAsInput,
  cpu: cpuClip,
  device(context) {
    const { node } = context;
    const kind = kindOf(context.inputs[0].datatype!);
    if (kind === 'bool') throw unsupported(node, `${context.inputs[0].datatype} input`);
    const storage = inputStorage(context, 0);
    return {
      kind: 'kernel',
      // Integers clamp in i32 (their storage), exactly.
      variants: [unaryVariant(storage, storage, kind === 'int' ? 'integer' : 'float')],
      plan(inputs, maxPerDimension) {
        const shape = [...required(inputs, 0).shape];
        const fn = unaryFunction('Clip', { min: clipBound(node, inputs, 1, -F32_MAX) ?? -F32_MAX, max: clipBound(node, inputs, 2, F32_MAX) ?? F32_MAX });
        return { outputShapes: [shape], dispatches: [{ ...unaryDispatch(product(shape), fn, maxPerDimension), bindings: io(1) }] };
      },
    };
  },
};

/** The unary op that rounds f32 values to a narrower float datatype. */
const NARROW_FLOAT_ROUNDING: Partial<Record<Datatype, number>> = { FP16: UNARY_OPS.RoundToFloat16, BF16: UNARY_OPS.RoundToBfloat16 };

/**
 * The unary op that wraps an i32 to a narrow integer type. Narrow integers are stored in i32, so
 * arithmetic that leaves their range (UINT8 200 + 100) and Casts into them (INT32 300 to UINT8)
 * wrap here, as ONNX's integer types do, before the next operator reads them.
 */
const NARROW_INTEGER_WRAP: Partial<Record<Datatype, UnaryFunction>> = {
  UINT8: { op: UNARY_OPS.WrapUint8, alpha: 0, beta: 0 }, INT8: { op: UNARY_OPS.WrapInt8, alpha: 0, beta: 0 },
  UINT16: { op: UNARY_OPS.WrapUint16, alpha: 0, beta: 0 }, INT16: { op: UNARY_OPS.WrapInt16, alpha: 0, beta: 0 },
};

/** Binary operators whose integer result can leave its operands' range. */
const OVERFLOWING_BINARY_OPS: ReadonlySet<string> = new Set(['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Sum']);

export const castSpec: OperatorSpec = {
  attributes: ['to', 'saturate'],
  inputs: [1, 1],
  types: ({ node }) => [datatypeOfOnnxCode(intAttribute(node, 'to', 1))],
  validate(node) {
    const to = datatypeOfOnnxCode(intAttribute(node, 'to', 1));
    if (to === 'BYTES') throw unsupported(node, 'to=STRING');
  },
  cpu: cpuCast,
  device(context) {
    const from = kindOf(context.inputs[0].datatype!);
    const to = kindOf(context.outputTypes[0]);
    const mode: UnaryMode = to === 'bool' ? 'toBoolean' : to === 'int' ? 'integer' : 'float';
    const variant = unaryVariant(inputStorage(context, 0), outputStorage(context), from === 'bool' && to === 'int' ? 'integer' : mode);
    // Narrow floats live in wider storage (f32, or f16 for BFLOAT16), so the cast itself rounds.
    const narrow = NARROW_FLOAT_ROUNDING[context.outputTypes[0]];
    const sameType = context.inputs[0].datatype === context.outputTypes[0];
    const fn = sameType ? IDENTITY : narrow !== undefined ? { op: narrow, alpha: 0, beta: 0 } : NARROW_INTEGER_WRAP[context.outputTypes[0]] ?? IDENTITY;
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

export function binarySpec(opType: BinaryOpName, variadic = false): OperatorSpec {
  const comparison = ['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor'].includes(opType);
  return {
    attributes: [],
    inputs: variadic ? [1, 2 ** 31] : [2, 2],
    types: comparison ? boolOutput : sameAsInput,
    cpu: cpuBinary(opType),
    device(context) {
      const { node } = context;
      const kind = kindOf(context.inputs[0].datatype!);
      const integerMath = kind !== 'float';
      // Pow with an integer base computes in integers whatever its exponent's type (binary.wgsl);
      // PRelu takes integers from opset 16.
      const integerOp = INTEGER_BINARY_OPS.has(opType) || opType === 'Pow' || (opType === 'PRelu' && context.opset >= 16);
      if (integerMath && !integerOp) throw unsupported(node, `${context.inputs[0].datatype} inputs`);
      if (!integerMath && ['And', 'Or', 'Xor'].includes(opType)) throw unsupported(node, `${context.inputs[0].datatype} inputs`);
      const wrap = OVERFLOWING_BINARY_OPS.has(opType) ? NARROW_INTEGER_WRAP[context.outputTypes[0]] : undefined;
      // Activations fuse onto float results only (compiler/fuse-epilogue.ts): an integer one never displaces the wrap.
      const activation = context.epilogue?.activation ?? wrap ?? IDENTITY;
      const intermediate = wrap ?? IDENTITY;
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
              ...binaryDispatch(op, last ? activation : intermediate, leftShape, shapes[index], outShape, maxPerDimension),
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

export const whereSpec: OperatorSpec = {
  attributes: [],
  inputs: [3, 3],
  types: ({ inputTypes }) => [inputTypes[1] ?? 'FP32'],
  cpu: cpuWhere,
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

/**
 * The function a fused epilogue computes for `node`, or undefined when it is not an activation
 * an epilogue may absorb (or a Clip whose bounds are not known at load). `inputs` holds the
 * node's inputs with their values where known (Clip's bounds).
 */
export function epilogueActivation(node: NodeProto, inputs: ParameterInputs): UnaryFunction | undefined {
  if (!FUSABLE_ACTIVATIONS.has(node.opType)) return undefined;
  if (node.opType === 'Clip') {
    const min = clipBound(node, inputs, 1, -F32_MAX);
    const max = clipBound(node, inputs, 2, F32_MAX);
    if (min === undefined || max === undefined) return undefined;
    return unaryFunction('Clip', { min, max });
  }
  return unaryFunction(node.opType, unaryAttributes(node));
}
