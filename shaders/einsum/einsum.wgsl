// Einsum of one or two operands as strided sums: each output element is a sum over every
// combination of the contracted labels of the product of the operands' elements there:
//
//   output[o] = sum over r of a[a_base(o) + a_off(r)] * b[b_base(o) + b_off(r)]
//
// where an operand's offset for a label is the sum of its strides on every axis with that label
// (so a repeated label, ii->i or a trace ii->, walks the diagonal) and 0 where it lacks it
// (broadcast). Accumulates in A (f32 for floats, i32 for integers).
//
// Bindings (group 0):
//   @binding(0) a       storage, read   array<T>
//   @binding(1) b       storage, read   array<T>   (a again for one operand)
//   @binding(2) output  storage, write  array<T>
//   @binding(3) params  uniform         Params below
// Type aliases: T is f32, f16 or i32; A is f32 or i32. Override constants: WORKGROUP_SIZE,
// OPERANDS (1 or 2). Unrolled: MAX_RANK (output and contracted labels together). Preludes:
// common/index.wgsl (fast_div).

override WORKGROUP_SIZE: u32 = 64u;
override OPERANDS: u32 = 2u;

struct Params {
  count: u32,
  out_rank: u32,
  reduce_rank: u32,
  reduce_count: u32,
  // The output labels innermost first, then the contracted labels innermost first: label l is
  // [l / 4][l % 4].
  shape: array<vec4<u32>, 2>,
  inverse: array<vec4<f32>, 2>,
  a_strides: array<vec4<u32>, 2>,
  b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> a: array<T>;
@group(0) @binding(1) var<storage, read> b: array<T>;
@group(0) @binding(2) var<storage, read_write> output: array<T>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }
  var rest = index;
  var a_base = 0u;
  var b_base = 0u;
  //#for l in MAX_RANK
  if ({l}u < params.out_rank) {
    let size = params.shape[{l}u / 4u][{l}u % 4u];
    let quotient = fast_div(rest, size, params.inverse[{l}u / 4u][{l}u % 4u]);
    let coord = rest - quotient * size;
    rest = quotient;
    a_base += coord * params.a_strides[{l}u / 4u][{l}u % 4u];
    b_base += coord * params.b_strides[{l}u / 4u][{l}u % 4u];
  }
  //#end
  var sum = A(0);
  for (var r = 0u; r < params.reduce_count; r++) {
    var left = r;
    var a_offset = a_base;
    var b_offset = b_base;
    for (var l = params.out_rank; l < params.out_rank + params.reduce_rank; l++) {
      let size = params.shape[l / 4u][l % 4u];
      let quotient = fast_div(left, size, params.inverse[l / 4u][l % 4u]);
      let coord = left - quotient * size;
      left = quotient;
      a_offset += coord * params.a_strides[l / 4u][l % 4u];
      b_offset += coord * params.b_strides[l / 4u][l % 4u];
    }
    if (OPERANDS == 2u) {
      sum += A(a[a_offset]) * A(b[b_offset]);
    } else {
      sum += A(a[a_offset]);
    }
  }
  output[index] = T(sum);
}
