// The two-operand function table shared by the binary kernel. Codes are named in
// services/executor/kernels/binary.ts. Comparisons and logic ops return 1 or 0 in the compute
// type; the kernel stores them as booleans (i32).

const BIN_ADD: u32 = 0u;
const BIN_SUB: u32 = 1u;
const BIN_MUL: u32 = 2u;
const BIN_DIV: u32 = 3u;
const BIN_POW: u32 = 4u;
const BIN_MIN: u32 = 5u;
const BIN_MAX: u32 = 6u;
const BIN_PRELU: u32 = 7u;
const BIN_EQUAL: u32 = 8u;
const BIN_GREATER: u32 = 9u;
const BIN_LESS: u32 = 10u;
const BIN_GREATER_OR_EQUAL: u32 = 11u;
const BIN_LESS_OR_EQUAL: u32 = 12u;
const BIN_AND: u32 = 13u;
const BIN_OR: u32 = 14u;
const BIN_XOR: u32 = 15u;
// Mod: integer remainder with the divisor's sign (fmod=0); FMOD: C's fmod, the dividend's sign
// (fmod=1, and the only float form). Shifts are BitShift on unsigned integers stored in i32: the
// right shift is logical, and the left shifts of UINT8 / UINT16 drop the bits past their width.
const BIN_MOD: u32 = 16u;
const BIN_FMOD: u32 = 17u;
const BIN_SHIFT_LEFT: u32 = 18u;
const BIN_SHIFT_LEFT_8: u32 = 19u;
const BIN_SHIFT_LEFT_16: u32 = 20u;
const BIN_SHIFT_RIGHT: u32 = 21u;
const BIN_BITWISE_AND: u32 = 22u;
const BIN_BITWISE_OR: u32 = 23u;
const BIN_BITWISE_XOR: u32 = 24u;

// x^y as C's pow: WGSL's pow is undefined for x <= 0, so the sign and the zero base are handled
// here, and small integer exponents are exact products.
fn onnx_pow(x: f32, y: f32) -> f32 {
  if (y == 2.0) { return x * x; }
  if (y == 1.0) { return x; }
  if (y == 0.0) { return 1.0; }
  if (y == 3.0) { return x * x * x; }
  if (y == 0.5) { return sqrt(x); }
  // 0^y is 0 for y > 0 and +infinity for y < 0 (bit patterns picked at run time: a constant
  // infinity is a WGSL compile error).
  if (x == 0.0) { return select(bitcast<f32>(select(0x7f800000u, 0u, y > 0.0)), 0.0, y > 0.0); }
  let magnitude = exp2(y * log2(abs(x)));
  if (x > 0.0) { return magnitude; }
  // A negative base needs an integral exponent (else NaN); odd exponents keep the sign.
  if (fract(y) != 0.0) { return bitcast<f32>(select(0x7fc00000u, 0u, y != y)); }
  return select(magnitude, -magnitude, fract(y * 0.5) != 0.0);
}

// Pow with an integer base (the output has the base's type): an integral exponent is an exact
// product by squaring (wrapping as the integer type does), any other truncates C's pow toward
// zero as onnxruntime's cast does. 1 / x^n for a negative n truncates the same way (1 or -1 for
// a base of +-1, else 0).
fn pow_integer_base(x: i32, y: f32) -> i32 {
  if (fract(y) != 0.0 || y < 0.0 || y >= 2147483648.0) { return i32(onnx_pow(f32(x), y)); }
  var exponent = u32(y);
  var base = x;
  var result = 1;
  while (exponent != 0u) {
    if ((exponent & 1u) != 0u) { result = result * base; }
    base = base * base;
    exponent = exponent >> 1u;
  }
  return result;
}

fn binary_float(x: f32, y: f32, op: u32) -> f32 {
  switch (op) {
    case BIN_SUB: { return x - y; }
    case BIN_MUL: { return x * y; }
    case BIN_DIV: { return x / y; }
    case BIN_POW: { return onnx_pow(x, y); }
    case BIN_MIN: { return min(x, y); }
    case BIN_MAX: { return max(x, y); }
    case BIN_PRELU: { return select(x * y, x, x >= 0.0); }
    case BIN_EQUAL: { return select(0.0, 1.0, x == y); }
    case BIN_GREATER: { return select(0.0, 1.0, x > y); }
    case BIN_LESS: { return select(0.0, 1.0, x < y); }
    case BIN_GREATER_OR_EQUAL: { return select(0.0, 1.0, x >= y); }
    case BIN_LESS_OR_EQUAL: { return select(0.0, 1.0, x <= y); }
    // x - y * trunc(x / y): the remainder takes x's sign, as C's fmod.
    case BIN_FMOD: { return x % y; }
    default: { return x + y; }
  }
}

fn binary_int(x: i32, y: i32, op: u32) -> i32 {
  switch (op) {
    case BIN_SUB: { return x - y; }
    case BIN_MUL: { return x * y; }
    // Truncating division, as C and ONNX integer Div; WGSL already returns x for y == 0.
    case BIN_DIV: { return x / y; }
    case BIN_MIN: { return min(x, y); }
    case BIN_MAX: { return max(x, y); }
    case BIN_PRELU: { return select(x * y, x, x >= 0); }
    case BIN_EQUAL: { return select(0, 1, x == y); }
    case BIN_GREATER: { return select(0, 1, x > y); }
    case BIN_LESS: { return select(0, 1, x < y); }
    case BIN_GREATER_OR_EQUAL: { return select(0, 1, x >= y); }
    case BIN_LESS_OR_EQUAL: { return select(0, 1, x <= y); }
    case BIN_AND: { return select(0, 1, x != 0 && y != 0); }
    case BIN_OR: { return select(0, 1, x != 0 || y != 0); }
    case BIN_XOR: { return select(0, 1, (x != 0) != (y != 0)); }
    case BIN_FMOD: { return x % y; }
    case BIN_MOD: {
      let remainder = x % y;
      return select(remainder, remainder + y, remainder != 0 && ((remainder < 0) != (y < 0)));
    }
    case BIN_SHIFT_LEFT: { return x << u32(y); }
    case BIN_SHIFT_LEFT_8: { return (x << u32(y)) & 0xff; }
    case BIN_SHIFT_LEFT_16: { return (x << u32(y)) & 0xffff; }
    case BIN_SHIFT_RIGHT: { return bitcast<i32>(bitcast<u32>(x) >> u32(y)); }
    case BIN_BITWISE_AND: { return x & y; }
    case BIN_BITWISE_OR: { return x | y; }
    case BIN_BITWISE_XOR: { return x ^ y; }
    default: { return x + y; }
  }
}
