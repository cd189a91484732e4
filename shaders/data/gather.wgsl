// Gather along one axis: the data viewed as [outer, axis_len, inner], the indices flattened to
// [count]:
//
//   output[o, j, i] = data[o, wrap(indices[j]), i],   wrap(k) = k < 0 ? k + axis_len : k
//
// Out-of-range indices (invalid ONNX) are clamped into the axis instead of reading out of bounds.
//
// Bindings (group 0):
//   @binding(0) data     storage, read   array<T>
//   @binding(1) indices  storage, read   array<i32>
//   @binding(2) output   storage, write  array<T>
//   @binding(3) params   uniform         Params below
// Type aliases: T is u32 (any 4-byte element) or f16.
// Override constants: WORKGROUP_SIZE. Preludes: common/index.wgsl (fast_div).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  axis_len: u32,
  index_count: u32,
  inner: u32,
  inner_inverse: f32,
  index_count_inverse: f32,
  _pad0: u32,
  _pad1: u32,
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
  let outer_j = fast_div(index, params.inner, params.inner_inverse);
  let i = index - outer_j * params.inner;
  let o = fast_div(outer_j, params.index_count, params.index_count_inverse);
  let j = outer_j - o * params.index_count;
  var k = indices[j];
  k = select(k, k + i32(params.axis_len), k < 0);
  let axis_index = u32(clamp(k, 0, i32(params.axis_len) - 1));
  output[index] = data[(o * params.axis_len + axis_index) * params.inner + i];
}
