// Where with numpy-style broadcasting of all three operands:
//
//   output[i] = condition[ic(i)] != 0 ? x[ix(i)] : y[iy(i)]
//
// Bindings (group 0):
//   @binding(0) condition  storage, read   array<i32> (booleans as 0 / 1)
//   @binding(1) x          storage, read   array<T>
//   @binding(2) y          storage, read   array<T>
//   @binding(3) output     storage, write  array<T>
//   @binding(4) params     uniform         Params below
// Type aliases: T is f32, f16 or i32.
// Override constants: WORKGROUP_SIZE.
// Preludes: common/index.wgsl (fast_div).
// Strides are per output dim (0 where that operand broadcasts), dims merged by the host.

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  rank: u32,
  _pad0: u32,
  _pad1: u32,
  out_shape: array<vec4<u32>, 2>,
  out_inverse: array<vec4<f32>, 2>,
  c_strides: array<vec4<u32>, 2>,
  x_strides: array<vec4<u32>, 2>,
  y_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> condition: array<i32>;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> y: array<T>;
@group(0) @binding(3) var<storage, read_write> output: array<T>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }
  var rest = index;
  var c_index = 0u;
  var x_index = 0u;
  var y_index = 0u;
  for (var dim = i32(params.rank) - 1; dim >= 0; dim--) {
    let size = params.out_shape[dim / 4][dim % 4];
    let quotient = fast_div(rest, size, params.out_inverse[dim / 4][dim % 4]);
    let coord = rest - quotient * size;
    rest = quotient;
    c_index += coord * params.c_strides[dim / 4][dim % 4];
    x_index += coord * params.x_strides[dim / 4][dim % 4];
    y_index += coord * params.y_strides[dim / 4][dim % 4];
  }
  output[index] = select(y[y_index], x[x_index], condition[c_index] != 0);
}
