/**
 * The maths of shaders/common/math_ops.wgsl (codes must match), which the unary kernel
 * (elementwise/unary.wgsl) runs for every code from MATH_OP_FIRST up.
 */

export const MATH_OPS = {
  Sin: 32, Cos: 33, Tan: 34, Asin: 35, Acos: 36, Atan: 37, Sinh: 38, Cosh: 39, Asinh: 40, Acosh: 41, Atanh: 42,
  Round: 43, Sign: 44, Mish: 45, Shrink: 46, ThresholdedRelu: 47, Celu: 48, Softsign: 49, IsNaN: 50, IsInf: 51, BitwiseNot: 52,
} as const;
export type MathOpName = keyof typeof MATH_OPS;
