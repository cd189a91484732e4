// Element-wise binary op with numpy-style broadcasting, then an optional fused activation:
//
//   output[i] = act(a[ia(i)] OP b[ib(i)])
//
// Bindings (group 0):
//   @binding(0) a       storage, read   array<TA>
//   @binding(1) b       storage, read   array<TB>
//   @binding(2) output  storage, write  array<TO>
//   @binding(3) params  uniform         Params below
// Type aliases (declared by the pipeline cache): TA, TB, TO are f32, f16 or i32.
// Override constants:
//   INT_MATH        compute in i32 (integer and boolean tensors) instead of f32
//   WORKGROUP_SIZE  invocations per workgroup; one element per invocation
// Preludes: common/index.wgsl (fast_div), common/binary_ops.wgsl (the op table),
//   common/unary_ops.wgsl (the fused activation).
//
// Broadcasting: the host right-aligns both shapes to the output's rank (up to 6), gives a
// broadcast dim stride 0, and merges neighbouring dims that broadcast alike, so the common cases
// ([B, N] + [N], equal shapes) unravel only 1 or 2 dims. Then ia(i) = sum_d coord_d(i) * a_strides[d],
// where coord(i) unravels i over out_shape; each division is a fast_div by a host reciprocal.

override INT_MATH: bool = false;
override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  rank: u32,
  op: u32,
  // Fused activation (unary_ops.wgsl code, OP_IDENTITY for none) and its attributes.
  act: u32,
  act_alpha: f32,
  act_beta: f32,
  _pad0: u32,
  _pad1: u32,
  // Dims are stored 4 per vec4 (uniform arrays need 16-byte elements): dim d is [d / 4][d % 4].
  out_shape: array<vec4<u32>, 2>,
  out_inverse: array<vec4<f32>, 2>,
  a_strides: array<vec4<u32>, 2>,
  b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> a: array<TA>;
@group(0) @binding(1) var<storage, read> b: array<TB>;
@group(0) @binding(2) var<storage, read_write> output: array<TO>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }

  var a_index = index * params.a_strides[0].x;
  var b_index = index * params.b_strides[0].x;
  if (params.rank > 1u) {
    // Unravel the output index from the innermost dim outwards.
    var rest = index;
    a_index = 0u;
    b_index = 0u;
    for (var dim = i32(params.rank) - 1; dim >= 0; dim--) {
      let size = params.out_shape[dim / 4][dim % 4];
      let quotient = fast_div(rest, size, params.out_inverse[dim / 4][dim % 4]);
      let coord = rest - quotient * size;
      rest = quotient;
      a_index += coord * params.a_strides[dim / 4][dim % 4];
      b_index += coord * params.b_strides[dim / 4][dim % 4];
    }
  }
  if (INT_MATH && params.op == BIN_POW) {
    // The exponent may be a float (Pow(int, float)): it is read as f32, not truncated.
    output[index] = TO(unary_int(pow_integer_base(i32(a[a_index]), f32(b[b_index])), params.act));
  } else if (INT_MATH) {
    // Integers take the integer functions (a fused Relu, a narrow type's wrap).
    output[index] = TO(unary_int(binary_int(i32(a[a_index]), i32(b[b_index]), params.op), params.act));
  } else {
    let value = binary_float(f32(a[a_index]), f32(b[b_index]), params.op);
    output[index] = TO(unary_op(value, params.act, params.act_alpha, params.act_beta));
  }
}
