// The element-wise function table shared by the unary kernel and every fused epilogue
// (matmul, convolution, binary ops). Codes are named in services/executor/kernels/unary-ops.ts.
//
//   unary_op(x, op, alpha, beta): f32 -> f32, with the ONNX attributes in alpha / beta:
//   LeakyRelu, Elu: alpha; Selu: alpha, gamma (beta); HardSigmoid: alpha, beta;
//   Clip: min (alpha), max (beta).
//   unary_int(x, op): i32 -> i32 for Identity, Neg, Abs, Relu, Not (booleans are 0 / 1) and the
//   wraps of narrow integer types (WRAP_*).
//   ROUND_F16 / ROUND_BF16: Cast to FLOAT16 / BFLOAT16 when floats are stored in f32.
//   SCALE: alpha * x + beta (Mean's division by its input count, in the last Add's epilogue).
//   Codes from 32 up are the maths of common/math_ops.wgsl, which only the unary kernel loads.

const OP_IDENTITY: u32 = 0u;
const OP_RELU: u32 = 1u;
const OP_LEAKY_RELU: u32 = 2u;
const OP_ELU: u32 = 3u;
const OP_SELU: u32 = 4u;
const OP_SIGMOID: u32 = 5u;
const OP_HARD_SIGMOID: u32 = 6u;
const OP_HARD_SWISH: u32 = 7u;
const OP_TANH: u32 = 8u;
const OP_GELU: u32 = 9u;
const OP_GELU_TANH: u32 = 10u;
const OP_ERF: u32 = 11u;
const OP_SOFTPLUS: u32 = 12u;
const OP_CLIP: u32 = 13u;
const OP_SQRT: u32 = 14u;
const OP_EXP: u32 = 15u;
const OP_LOG: u32 = 16u;
const OP_NEG: u32 = 17u;
const OP_ABS: u32 = 18u;
const OP_RECIPROCAL: u32 = 19u;
const OP_FLOOR: u32 = 20u;
const OP_CEIL: u32 = 21u;
const OP_NOT: u32 = 22u;
const OP_ROUND_F16: u32 = 23u;
const OP_ROUND_BF16: u32 = 24u;
const OP_SCALE: u32 = 25u;
// An i32 holding a narrow integer type's value wrapped to that type, as its arithmetic wraps
// (UINT8 200 + 100 is 44, INT8 100 + 100 is -56): the low bits, sign-extended for signed types.
const OP_WRAP_U8: u32 = 26u;
const OP_WRAP_I8: u32 = 27u;
const OP_WRAP_U16: u32 = 28u;
const OP_WRAP_I16: u32 = 29u;

// sigmoid(x) = 1 / (1 + exp(-x)), evaluated on the side where exp cannot overflow:
// for x < 0 it is exp(x) / (1 + exp(x)).
fn sigmoid(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// erf(x) to about 1e-7: a Taylor series near 0 (where 1 - erfc(x) would cancel), and the
// Chebyshev fit of erfc (Numerical Recipes' erfcc, fractional error < 1.2e-7) elsewhere.
fn erf(x: f32) -> f32 {
  let z = abs(x);
  let z2 = z * z;
  let series = z * (1.1283791671 + z2 * (-0.3761263890 + z2 * (0.1128379167 + z2 * (-0.0268661706 + z2 * 0.0052239776))));
  let t = 1.0 / (1.0 + 0.5 * z);
  let erfc = t * exp(-z2 - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  let magnitude = select(1.0 - erfc, series, z < 0.5);
  return select(magnitude, -magnitude, x < 0.0);
}

// tanh(±10) is ±1 in f32; clamping keeps exp-based tanh implementations from overflowing to NaN.
fn safe_tanh(x: f32) -> f32 {
  return tanh(clamp(x, -10.0, 10.0));
}

// x rounded to the nearest value with `dropped` fewer mantissa bits, ties to even, on the bits
// (so the result does not depend on how the device converts): adding half a unit (minus one
// when the kept lsb is 0) and truncating carries into the exponent, up to infinity, by itself.
// NaN passes through (its payload could round to infinity).
fn round_mantissa(x: f32, dropped: u32) -> f32 {
  let bits = bitcast<u32>(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) { return x; }
  let half = (1u << (dropped - 1u)) - 1u;
  let rounded = bits + half + ((bits >> dropped) & 1u);
  return bitcast<f32>(rounded & ~((1u << dropped) - 1u));
}

// What a Cast to FLOAT16 stores: 11 significant bits, subnormal steps of 2^-24 below 2^-14,
// +-infinity past 65504 (the rounded value is 65536 or more there).
fn round_to_f16(x: f32) -> f32 {
  if (abs(x) < 6.103515625e-05) {
    // round() breaks ties to even; scaling by powers of two is exact.
    return round(x * 16777216.0) * 5.9604644775390625e-08;
  }
  let rounded = round_mantissa(x, 13u);
  let infinity = bitcast<f32>((bitcast<u32>(x) & 0x80000000u) | 0x7f800000u);
  return select(rounded, infinity, abs(rounded) > 65504.0);
}

fn unary_op(x: f32, op: u32, alpha: f32, beta: f32) -> f32 {
  switch (op) {
    case OP_RELU: { return max(x, 0.0); }
    case OP_LEAKY_RELU: { return select(alpha * x, x, x >= 0.0); }
    case OP_ELU: { return select(alpha * (exp(x) - 1.0), x, x > 0.0); }
    case OP_SELU: { return beta * select(alpha * (exp(x) - 1.0), x, x > 0.0); }
    case OP_SIGMOID: { return sigmoid(x); }
    case OP_HARD_SIGMOID: { return clamp(alpha * x + beta, 0.0, 1.0); }
    case OP_HARD_SWISH: { return x * clamp(x / 6.0 + 0.5, 0.0, 1.0); }
    case OP_TANH: { return safe_tanh(x); }
    // gelu(x) = x / 2 * (1 + erf(x / sqrt(2)))
    case OP_GELU: { return 0.5 * x * (1.0 + erf(x * 0.70710678118)); }
    // gelu_tanh(x) = x / 2 * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 x^3)))
    case OP_GELU_TANH: { return 0.5 * x * (1.0 + safe_tanh(0.79788456080 * (x + 0.044715 * x * x * x))); }
    case OP_ERF: { return erf(x); }
    // softplus(x) = log(1 + exp(x)), = x where exp(x) would overflow.
    case OP_SOFTPLUS: { return select(log(1.0 + exp(x)), x, x > 20.0); }
    case OP_CLIP: { return min(max(x, alpha), beta); }
    case OP_SQRT: { return sqrt(x); }
    case OP_EXP: { return exp(x); }
    case OP_LOG: { return log(x); }
    case OP_NEG: { return -x; }
    case OP_ABS: { return abs(x); }
    case OP_RECIPROCAL: { return 1.0 / x; }
    case OP_FLOOR: { return floor(x); }
    case OP_CEIL: { return ceil(x); }
    case OP_NOT: { return select(0.0, 1.0, x == 0.0); }
    case OP_ROUND_F16: { return round_to_f16(x); }
    // BFLOAT16 keeps f32's exponent: only the mantissa shrinks, to 8 significant bits.
    case OP_ROUND_BF16: { return round_mantissa(x, 16u); }
    case OP_SCALE: { return fma(alpha, x, beta); }
    default: { return x; }
  }
}

fn unary_int(x: i32, op: u32) -> i32 {
  switch (op) {
    case OP_NEG: { return -x; }
    case OP_ABS: { return abs(x); }
    case OP_NOT: { return select(0, 1, x == 0); }
    case OP_RELU: { return max(x, 0); }
    case OP_WRAP_U8: { return x & 0xff; }
    case OP_WRAP_I8: { return (x << 24u) >> 24u; }
    case OP_WRAP_U16: { return x & 0xffff; }
    case OP_WRAP_I16: { return (x << 16u) >> 16u; }
    default: { return x; }
  }
}
