// The element-wise maths only the unary kernel needs (trigonometry, rounding, the rarer
// activations, NaN / infinity tests, bitwise not), kept out of common/unary_ops.wgsl so that the
// GEMM, convolution and binary epilogues, which include that table, stay small. Codes are named
// in services/executor/kernels/math.ts and start at MATH_OP_FIRST.
//
//   math_op(x, op, alpha, beta): f32 -> f32. Shrink: lambd (alpha), bias (beta);
//   ThresholdedRelu, Celu: alpha; IsInf: detect_negative (alpha), detect_positive (beta), as 0 / 1.
//   IsNaN / IsInf return 1 or 0 (the kernel stores them as booleans).
//   math_int(x, op, alpha): i32 -> i32 for Sign and BitwiseNot, which flips the bits of
//   i32(alpha): -1 for every bit, 255 / 65535 for UINT8 / UINT16 (stored in i32).

const MATH_OP_FIRST: u32 = 32u;
const OP_SIN: u32 = 32u;
const OP_COS: u32 = 33u;
const OP_TAN: u32 = 34u;
const OP_ASIN: u32 = 35u;
const OP_ACOS: u32 = 36u;
const OP_ATAN: u32 = 37u;
const OP_SINH: u32 = 38u;
const OP_COSH: u32 = 39u;
const OP_ASINH: u32 = 40u;
const OP_ACOSH: u32 = 41u;
const OP_ATANH: u32 = 42u;
const OP_ROUND: u32 = 43u;
const OP_SIGN: u32 = 44u;
const OP_MISH: u32 = 45u;
const OP_SHRINK: u32 = 46u;
const OP_THRESHOLDED_RELU: u32 = 47u;
const OP_CELU: u32 = 48u;
const OP_SOFTSIGN: u32 = 49u;
const OP_IS_NAN: u32 = 50u;
const OP_IS_INF: u32 = 51u;
const OP_BITWISE_NOT: u32 = 52u;

// On the bits: a compiler may assume floats are never NaN and fold `x != x` away.
fn is_nan_bits(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}

fn is_inf_bits(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;
}

fn math_op(x: f32, op: u32, alpha: f32, beta: f32) -> f32 {
  switch (op) {
    case OP_SIN: { return sin(x); }
    case OP_COS: { return cos(x); }
    case OP_TAN: { return tan(x); }
    // Through atan2: some drivers' asin / acos are off by 4e-4 (lavapipe's near 0.5), their atan
    // is not. (1 - x)(1 + x) keeps 1 - x^2 exact near |x| = 1.
    case OP_ASIN: { return atan2(x, sqrt((1.0 - x) * (1.0 + x))); }
    case OP_ACOS: { return atan2(sqrt((1.0 - x) * (1.0 + x)), x); }
    case OP_ATAN: { return atan(x); }
    case OP_SINH: { return sinh(x); }
    case OP_COSH: { return cosh(x); }
    // On |x| with the sign put back: log(x + sqrt(x^2 + 1)) cancels for negative x.
    case OP_ASINH: {
      let z = abs(x);
      let magnitude = log(z + sqrt(z * z + 1.0));
      return select(magnitude, -magnitude, x < 0.0);
    }
    // NaN below 1 (sqrt of a negative number), as ONNX's domain.
    case OP_ACOSH: { return log(x + sqrt(x * x - 1.0)); }
    case OP_ATANH: { return 0.5 * log((1.0 + x) / (1.0 - x)); }
    // WGSL's round() breaks ties to even, as ONNX's Round.
    case OP_ROUND: { return round(x); }
    case OP_SIGN: { return sign(x); }
    // mish(x) = x * tanh(softplus(x)); softplus(x) = x where exp(x) would overflow.
    case OP_MISH: { return x * tanh(clamp(select(log(1.0 + exp(x)), x, x > 20.0), -10.0, 10.0)); }
    case OP_SHRINK: { return select(select(0.0, x + beta, x < -alpha), x - beta, x > alpha); }
    case OP_THRESHOLDED_RELU: { return select(0.0, x, x > alpha); }
    // celu(x) = max(0, x) + min(0, alpha * (exp(x / alpha) - 1))
    case OP_CELU: { return max(x, 0.0) + min(0.0, alpha * (exp(x / alpha) - 1.0)); }
    case OP_SOFTSIGN: { return x / (1.0 + abs(x)); }
    case OP_IS_NAN: { return select(0.0, 1.0, is_nan_bits(x)); }
    case OP_IS_INF: {
      let wanted = select(beta != 0.0, alpha != 0.0, x < 0.0);
      return select(0.0, 1.0, is_inf_bits(x) && wanted);
    }
    default: { return x; }
  }
}

fn math_int(x: i32, op: u32, alpha: f32) -> i32 {
  switch (op) {
    case OP_SIGN: { return sign(x); }
    case OP_BITWISE_NOT: { return x ^ i32(alpha); }
    default: { return x; }
  }
}
