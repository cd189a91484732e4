// GatherElements along one axis: the output has the indices' shape, and
//
//   output[c] = data[c with c_axis replaced by wrap(indices[c])],   wrap(k) = k < 0 ? k + axis_len : k
//
// Out-of-range indices (invalid ONNX) are clamped into the axis instead of reading out of bounds.
//
// Bindings (group 0):
//   @binding(0) data     storage, read   array<T>
//   @binding(1) indices  storage, read   array<i32>
//   @binding(2) output   storage, write  array<T>
//   @binding(3) params   uniform         Params below
// Type aliases: T is u32 (any 4-byte element) or f16.
// Override constants: WORKGROUP_SIZE. Unrolled: MAX_RANK. Preludes: common/index.wgsl (fast_div).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  rank: u32,
  axis_len: u32,
  axis_stride: u32,
  // The output's dims and the data's strides over them (0 on the axis), innermost first:
  // dim d is [d / 4][d % 4].
  shape: array<vec4<u32>, 2>,
  inverse: array<vec4<f32>, 2>,
  data_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> data: array<T>;
@group(0) @binding(1) var<storage, read> indices: array<i32>;
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
  var offset = 0u;
  //#for d in MAX_RANK
  if ({d}u < params.rank) {
    let size = params.shape[{d}u / 4u][{d}u % 4u];
    let quotient = fast_div(rest, size, params.inverse[{d}u / 4u][{d}u % 4u]);
    offset += (rest - quotient * size) * params.data_strides[{d}u / 4u][{d}u % 4u];
    rest = quotient;
  }
  //#end
  var k = indices[index];
  k = select(k, k + i32(params.axis_len), k < 0);
  let position = u32(clamp(k, 0, i32(params.axis_len) - 1));
  output[index] = data[offset + position * params.axis_stride];
}
