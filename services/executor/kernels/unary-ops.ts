/**
 * The element-wise function table of shaders/common/unary_ops.wgsl (codes must match), and how
 * ONNX activation nodes map onto it. The same table serves the unary kernel and every fused
 * epilogue, so an activation costs no extra pipeline wherever it lands.
 */

export const UNARY_OPS = {
  Identity: 0, Relu: 1, LeakyRelu: 2, Elu: 3, Selu: 4, Sigmoid: 5, HardSigmoid: 6, HardSwish: 7,
  Tanh: 8, Gelu: 9, GeluTanh: 10, Erf: 11, Softplus: 12, Clip: 13, Sqrt: 14, Exp: 15, Log: 16,
  Neg: 17, Abs: 18, Reciprocal: 19, Floor: 20, Ceil: 21, Not: 22,
  // Cast to FLOAT16 / BFLOAT16: values keep their f32 storage but lose the narrow type's precision.
  RoundToFloat16: 23, RoundToBfloat16: 24,
  // alpha * x + beta: Mean divides its sum in the last Add's epilogue.
  Scale: 25,
  // An integer wrapped to a narrow type (the low bits, sign-extended for INT8 / INT16).
  WrapUint8: 26, WrapInt8: 27, WrapUint16: 28, WrapInt16: 29,
} as const;
export type UnaryOpName = keyof typeof UNARY_OPS;

/** One element-wise function with its attributes, as the shaders take it. */
export interface UnaryFunction {
  readonly op: number;
  readonly alpha: number;
  readonly beta: number;
}

export const IDENTITY: UnaryFunction = { op: UNARY_OPS.Identity, alpha: 0, beta: 0 };

/** Ops that also work on integers (unary_int in the shader). */
export const INTEGER_UNARY_OPS: ReadonlySet<string> = new Set(['Neg', 'Abs', 'Identity', 'Relu']);

/** ONNX unary operators the table computes directly, with their attribute defaults. */
export const ONNX_UNARY: Readonly<Record<string, { op: UnaryOpName; attributes: Readonly<Record<string, number>> }>> = {
  Relu: { op: 'Relu', attributes: {} },
  LeakyRelu: { op: 'LeakyRelu', attributes: { alpha: 0.01 } },
  Elu: { op: 'Elu', attributes: { alpha: 1 } },
  Selu: { op: 'Selu', attributes: { alpha: 1.67326319217681884765625, gamma: 1.05070102214813232421875 } },
  Sigmoid: { op: 'Sigmoid', attributes: {} },
  HardSigmoid: { op: 'HardSigmoid', attributes: { alpha: 0.2, beta: 0.5 } },
  HardSwish: { op: 'HardSwish', attributes: {} },
  Tanh: { op: 'Tanh', attributes: {} },
  Erf: { op: 'Erf', attributes: {} },
  Softplus: { op: 'Softplus', attributes: {} },
  Sqrt: { op: 'Sqrt', attributes: {} },
  Exp: { op: 'Exp', attributes: {} },
  Log: { op: 'Log', attributes: {} },
  Neg: { op: 'Neg', attributes: {} },
  Abs: { op: 'Abs', attributes: {} },
  Reciprocal: { op: 'Reciprocal', attributes: {} },
  Floor: { op: 'Floor', attributes: {} },
  Ceil: { op: 'Ceil', attributes: {} },
  Not: { op: 'Not', attributes: {} },
  Identity: { op: 'Identity', attributes: {} },
};

/**
 * The function for an ONNX unary node, given its attribute values (defaults filled in by the
 * caller from ONNX_UNARY). Gelu's `approximate` ('none' | 'tanh') picks the variant; Clip takes
 * min / max (already read from its inputs).
 */
export function unaryFunction(opType: string, attributes: Readonly<Record<string, number | string>>): UnaryFunction {
  const number = (name: string, fallback: number) => {
    const value = attributes[name];
    return typeof value === 'number' ? value : fallback;
  };
  switch (opType) {
    case 'Gelu': return { op: attributes.approximate === 'tanh' ? UNARY_OPS.GeluTanh : UNARY_OPS.Gelu, alpha: 0, beta: 0 };
    case 'Clip': return { op: UNARY_OPS.Clip, alpha: number('min', -3.4028234663852886e38), beta: number('max', 3.4028234663852886e38) };
    case 'Selu': return { op: UNARY_OPS.Selu, alpha: number('alpha', ONNX_UNARY.Selu.attributes.alpha), beta: number('gamma', ONNX_UNARY.Selu.attributes.gamma) };
    default: {
      const entry = ONNX_UNARY[opType];
      if (!entry) throw new Error(`${opType} is not in the unary table`);
      const defaults = entry.attributes;
      return { op: UNARY_OPS[entry.op], alpha: number('alpha', defaults.alpha ?? 0), beta: number('beta', defaults.beta ?? 0) };
    }
  }
}

/** Activations a GEMM / convolution / binary epilogue may absorb (all f32 -> f32). */
export const FUSABLE_ACTIVATIONS: ReadonlySet<string> = new Set([
  'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Gelu', 'Softplus', 'Clip',
]);
