/**
 * The QOperator-format operators of onnxruntime's static quantization (com.microsoft), on the
 * quantization and float kernels, with onnxruntime's arithmetic step by step (f32 throughout,
 * rounding half to even, saturating to the output type), since a tie may fall either way with
 * any other order:
 *   QLinearAdd(A, B)          C = round((A - za) * (sa/sc) + (B - zb) * (sb/sc) + zc)
 *   QLinearMul(A, B)          C = round((A - za)(B - zb) * ((sa*sb)/sc) + zc)
 *   QLinearAveragePool        Y = round(average of (X - zx) * sx, / sy, + zy)
 *   QLinearGlobalAveragePool  Y = round(sum over H, W of (X - zx) * (sx / (sy * H * W))) + zy
 *   QLinearConcat             Y = round((Xi - zi) * si / sy) + zy, concatenated
 *   QLinearLeakyRelu, QLinearSigmoid  Y = round(f((X - zx) * sx) / sy) + zy
 * (the zero point added before rounding where MLAS's kernels do, after where its requantization
 * and lookup tables do). Scales and zero points must be constants (per-tensor quantization).
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { UNARY_OPS, unaryFunction, type UnaryFunction } from '../kernels/index.ts';
import { numberView, product } from '../tensor/index.ts';
import { booleanAttribute, floatAttribute, intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { LoadContext, OperatorSpec, TypeContext } from './contract.ts';
import { binarySpec } from './elementwise.ts';
import { required } from './parameters.ts';
import { dequantizeLinearSpec, quantizeLinearSpec } from './quantization.ts';
import { reduceSpec } from './reduce.ts';
import { concatSpec } from './data-movement.ts';
import { poolSpec } from './pool.ts';
import { fp32 } from './spec-parts.ts';
import { createComposite, intAttr, intsAttr, type Composite, type Value } from './contrib-composite.ts';

/** The output has input 0's quantized type. */
const quantizedTypes = ({ inputTypes }: TypeContext): Datatype[] => [inputTypes[0] ?? 'UINT8'];

/** A per-tensor scale or zero point known at load (a zero point defaults to 0). */
function scalar(context: LoadContext, index: number, what: string, fallback?: number): number {
  if (!context.node.input[index] && fallback !== undefined) return fallback;
  const tensor = context.inputs[index]?.constant;
  if (!tensor) throw unsupported(context.node, `${what} computed at run time (it must be a constant)`);
  if (product(tensor.shape) !== 1) throw unsupported(context.node, `${what} of shape [${tensor.shape}] (per-tensor quantization only)`);
  return numberView(tensor)[0];
}

const f32 = (value: number): HostTensor => fp32([], Float32Array.of(value));

/** The node's quantized input `data` minus its zero point as FP32, times `scale` (one f32 rounding). */
function dequantized(program: Composite, context: LoadContext, data: number, zero: number | undefined, scale: number, what: string): Value {
  const out = program.temp('FP32');
  const zeroPoint = zero !== undefined && context.node.input[zero] ? program.input(zero) : undefined;
  program.stage(dequantizeLinearSpec, 'DequantizeLinear', [program.input(data), program.constant(`${what}_scale`, f32(scale)), zeroPoint], [out]);
  return out;
}

/**
 * Output 0 from `value`: with `zeroFirst` (MLAS's binary and pooling kernels) the node's zero
 * point input `zero` (0 when omitted) is added before rounding half to even, which decides the
 * ties; otherwise (ONNX's QuantizeLinear, onnxruntime's lookup tables) after. Saturated.
 */
function requantized(program: Composite, context: LoadContext, value: Value, zero: number, zeroFirst: boolean): void {
  const datatype = context.outputTypes[0];
  const zeroOf = (point: number) => program.constant(`zero_${point}`, { datatype, shape: [], data: datatype === 'INT8' ? Int8Array.of(point) : Uint8Array.of(point) });
  if (!zeroFirst) {
    const zeroPoint = context.node.input[zero] ? program.input(zero) : zeroOf(0);
    program.stage(quantizeLinearSpec, 'QuantizeLinear', [value, program.constant('unit_scale', f32(1)), zeroPoint], [program.output(0)]);
    return;
  }
  const shifted = program.temp('FP32');
  program.stage(binarySpec('Add'), 'Add', [value, program.constant('zero_point', f32(scalar(context, zero, 'the output zero point', 0)))], [shifted]);
  program.stage(quantizeLinearSpec, 'QuantizeLinear', [shifted, program.constant('unit_scale', f32(1)), zeroOf(0)], [program.output(0)]);
}

const SCALE = (alpha: number): UnaryFunction => ({ op: UNARY_OPS.Scale, alpha, beta: 0 });

export const qLinearAddSpec: OperatorSpec = {
  attributes: [],
  inputs: [7, 8],
  types: quantizedTypes,
  device(context) {
    const program = createComposite(context);
    const scaleC = scalar(context, 6, 'C_scale');
    const a = dequantized(program, context, 0, 2, Math.fround(scalar(context, 1, 'A_scale') / scaleC), 'a');
    const b = dequantized(program, context, 3, 5, Math.fround(scalar(context, 4, 'B_scale') / scaleC), 'b');
    const sum = program.temp('FP32');
    program.stage(binarySpec('Add'), 'Add', [a, b], [sum]);
    requantized(program, context, sum, 7, true);
    return program.build();
  },
};

export const qLinearMulSpec: OperatorSpec = {
  attributes: [],
  inputs: [7, 8],
  types: quantizedTypes,
  device(context) {
    const program = createComposite(context);
    // In f32 as MLAS forms it: (sa * sb) / sc, each step rounded.
    const ratio = Math.fround(Math.fround(scalar(context, 1, 'A_scale') * scalar(context, 4, 'B_scale')) / scalar(context, 6, 'C_scale'));
    // (A - za)(B - zb) is an exact integer in f32; the ratio scales it in the Mul's epilogue.
    const [a, b] = [dequantized(program, context, 0, 2, 1, 'a'), dequantized(program, context, 3, 5, 1, 'b')];
    const scaled = program.temp('FP32');
    program.stage(binarySpec('Mul'), 'Mul', [a, b], [scaled], { epilogue: { activation: SCALE(ratio) } });
    requantized(program, context, scaled, 7, true);
    return program.build();
  },
};

export const qLinearGlobalAveragePoolSpec: OperatorSpec = {
  attributes: ['channels_last'],
  inputs: [5, 5],
  types: quantizedTypes,
  validate(node) {
    if (booleanAttribute(node, 'channels_last')) throw unsupported(node, 'channels_last=1');
  },
  device(context) {
    const program = createComposite(context);
    const [scaleX, scaleY] = [scalar(context, 1, 'x_scale'), scalar(context, 3, 'y_scale')];
    // The sum of X - zx is exact; sx / (sy * H * W) depends on the plan's spatial size: a
    // one-value table each plan computes, multiplied in.
    const ratio = program.table('FP32', (inputs) => f32(Math.fround(scaleX / Math.fround(scaleY * product(required(inputs, 0).shape.slice(2))))));
    const x = dequantized(program, context, 0, 2, 1, 'x');
    const sum = program.temp('FP32');
    program.stage(reduceSpec('ReduceSum'), 'ReduceSum', [program.view(x, (shape) => [shape[0], shape[1], product(shape.slice(2))])], [sum], {
      attributes: [intsAttr('axes', [2]), intAttr('keepdims', 1)], opset: 12,
    });
    const averaged = program.temp('FP32');
    program.stage(binarySpec('Mul'), 'Mul', [sum, ratio], [averaged]);
    const shaped = program.view(averaged, (_, inputs) => [...required(inputs, 0).shape.slice(0, 2), ...required(inputs, 0).shape.slice(2).map(() => 1)]);
    requantized(program, context, shaped, 4, false);
    return program.build();
  },
};

/** Y = quantize(f(dequantize(X))): X, x_scale, x_zero_point, y_scale, y_zero_point. */
function qLinearUnarySpec(attributes: string[], fn: (context: LoadContext) => UnaryFunction): OperatorSpec {
  return {
    attributes,
    inputs: [4, 5],
    types: quantizedTypes,
    device(context) {
      const program = createComposite(context);
      const x = dequantized(program, context, 0, 2, scalar(context, 1, 'X_scale'), 'x');
      const y = program.temp('FP32');
      // f in a Mul's epilogue, then the division by y_scale before the rounding.
      const activated = program.temp('FP32');
      program.stage(binarySpec('Mul'), 'Mul', [x, program.constant('one', f32(1))], [activated], { epilogue: { activation: fn(context) } });
      program.stage(binarySpec('Div'), 'Div', [activated, program.constant('y_scale', f32(scalar(context, 3, 'Y_scale')))], [y]);
      requantized(program, context, y, 4, false);
      return program.build();
    },
  };
}

export const qLinearLeakyReluSpec = qLinearUnarySpec(['alpha'], (context) => unaryFunction('LeakyRelu', { alpha: floatAttribute(context.node, 'alpha', 0.01) }));
export const qLinearSigmoidSpec = qLinearUnarySpec([], () => unaryFunction('Sigmoid', {}));

const AVERAGE_POOL = poolSpec(false);

export const qLinearAveragePoolSpec: OperatorSpec = {
  attributes: [...AVERAGE_POOL.attributes, 'channels_last'],
  inputs: [4, 5],
  types: quantizedTypes,
  validate(node, opset) {
    if (booleanAttribute(node, 'channels_last')) throw unsupported(node, 'channels_last=1');
    AVERAGE_POOL.validate?.(node, opset);
  },
  device(context) {
    const program = createComposite(context);
    const x = dequantized(program, context, 0, 2, scalar(context, 1, 'x_scale'), 'x');
    const averaged = program.temp('FP32');
    const attributes = context.node.attribute.filter((attribute) => attribute.name !== 'channels_last');
    program.stage(AVERAGE_POOL, 'AveragePool', [x], [averaged], { attributes });
    const scaled = program.temp('FP32');
    program.stage(binarySpec('Div'), 'Div', [averaged, program.constant('y_scale', f32(scalar(context, 3, 'y_scale')))], [scaled]);
    requantized(program, context, scaled, 4, true);
    return program.build();
  },
};

export const qLinearConcatSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [5, 2 ** 31],
  types: ({ inputTypes }) => [inputTypes[2] ?? 'UINT8'],
  validate(node) {
    if ((node.input.length - 2) % 3 !== 0) throw invalidNode(node, `has ${node.input.length} inputs; after Y_scale and Y_zero_point they come in (tensor, scale, zero point) triples`);
    intAttribute(node, 'axis', 0);
  },
  device(context) {
    const program = createComposite(context);
    const parts: Value[] = [];
    for (let index = 2; index < context.node.input.length; index += 3) {
      parts.push(dequantized(program, context, index, index + 2, scalar(context, index + 1, `scale of input ${index}`), `x${index}`));
    }
    const joined = program.temp('FP32');
    program.stage(concatSpec, 'Concat', parts, [joined], { attributes: [intAttr('axis', intAttribute(context.node, 'axis', 0))] });
    const scaled = program.temp('FP32');
    program.stage(binarySpec('Div'), 'Div', [joined, program.constant('y_scale', f32(scalar(context, 0, 'Y_scale')))], [scaled]);
    requantized(program, context, scaled, 1, false);
    return program.build();
  },
};
