// OneHot: indices [outer, inner] become [outer, depth, inner]:
//
//   output[o, j, i] = wrap(indices[o, i]) == j ? values[1] : values[0],   wrap(k) = k < 0 ? k + depth : k
//
// Float indices are truncated towards zero, as a cast to an integer does.
//
// Bindings (group 0):
//   @binding(0) indices  storage, read   array<I>
//   @binding(1) values   storage, read   array<T>   [off, on]
//   @binding(2) output   storage, write  array<T>
//   @binding(3) params   uniform         Params below
// Type aliases: I is i32, f32 or f16; T is u32 (any 4-byte element) or f16.
// Override constants: WORKGROUP_SIZE. Preludes: common/index.wgsl (fast_div).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  depth: u32,
  inner: u32,
  inner_inverse: f32,
  depth_inverse: f32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<storage, read> indices: array<I>;
@group(0) @binding(1) var<storage, read> values: array<T>;
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
  let o = fast_div(outer_j, params.depth, params.depth_inverse);
  let j = i32(outer_j - o * params.depth);
  var k = i32(indices[o * params.inner + i]);
  k = select(k, k + i32(params.depth), k < 0);
  output[index] = select(values[0], values[1], k == j);
}
