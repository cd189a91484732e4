// Element-wise unary op: output[i] = f(input[i]). One pipeline serves every op of a type pair:
// the op is a uniform (a branch every invocation takes the same way), not an override constant.
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<TI>
//   @binding(1) output  storage, write  array<TO> (same element count)
//   @binding(2) params  uniform         Params below
// Type aliases (declared by the pipeline cache): TI, TO are f32, f16 or i32.
// Override constants:
//   MODE            0 = float math: TO(unary_op(f32(x)))   (also int -> float casts)
//                   1 = integer math: TO(unary_int(i32(x))) (also float -> int casts, truncating; Clip clamps)
//                   2 = to boolean: x != 0
//   WORKGROUP_SIZE  invocations per workgroup; one element per invocation
// Preludes: common/unary_ops.wgsl (the op table), common/math_ops.wgsl (codes from MATH_OP_FIRST).
// The grid may be 2-D when count / WORKGROUP_SIZE exceeds the 65535 workgroups per dimension:
// the element index is the row-major position of the invocation in the whole grid.

override MODE: u32 = 0u;
override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  op: u32,
  alpha: f32,
  beta: f32,
}

@group(0) @binding(0) var<storage, read> input: array<TI>;
@group(0) @binding(1) var<storage, read_write> output: array<TO>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }
  let x = input[index];
  if (MODE == 1u) {
    if (params.op == OP_CLIP) {
      // Integer Clip: the bounds come as f32 (exact up to 2^24); i32() saturates, so the default
      // bounds (the largest finite f32s) leave every value as it is.
      output[index] = TO(min(max(i32(x), i32(params.alpha)), i32(params.beta)));
    } else if (params.op >= MATH_OP_FIRST) {
      output[index] = TO(math_int(i32(x), params.op, params.alpha));
    } else {
      output[index] = TO(unary_int(i32(x), params.op));
    }
  } else if (MODE == 2u) {
    output[index] = TO(select(0, 1, f32(x) != 0.0));
  } else if (params.op >= MATH_OP_FIRST) {
    output[index] = TO(math_op(f32(x), params.op, params.alpha, params.beta));
  } else {
    output[index] = TO(unary_op(f32(x), params.op, params.alpha, params.beta));
  }
}
