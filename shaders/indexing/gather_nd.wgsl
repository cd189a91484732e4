// GatherND with batch_dims b: indices [..batch, ..tuples, k] pick slices of data [..batch, ..k dims, ..slice]:
//
//   output[batch, tuple, s] = data[batch, wrap(indices[batch, tuple, 0]), .., wrap(indices[batch, tuple, k - 1]), s]
//
// The output is walked as [tuple count, slice size]; the batch of a tuple is tuple / tuples_per_batch.
// Out-of-range indices (invalid ONNX) are clamped into their dim.
//
// Bindings (group 0):
//   @binding(0) data     storage, read   array<T>
//   @binding(1) indices  storage, read   array<i32>
//   @binding(2) output   storage, write  array<T>
//   @binding(3) params   uniform         Params below
// Type aliases: T is u32 (any 4-byte element) or f16.
// Override constants: WORKGROUP_SIZE. Unrolled: MAX_RANK (the longest index tuple). Preludes: common/index.wgsl.

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  slice_size: u32,
  slice_inverse: f32,
  k: u32,
  tuples_per_batch: u32,
  tuples_inverse: f32,
  batch_stride: u32,
  _pad: u32,
  // The data dims the tuple indexes and their strides: entry j is [j / 4][j % 4].
  dims: array<vec4<i32>, 2>,
  strides: array<vec4<u32>, 2>,
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
  let tuple = fast_div(index, params.slice_size, params.slice_inverse);
  let s = index - tuple * params.slice_size;
  let batch = fast_div(tuple, params.tuples_per_batch, params.tuples_inverse);
  var offset = batch * params.batch_stride + s;
  //#for j in MAX_RANK
  if ({j}u < params.k) {
    let dim = params.dims[{j}u / 4u][{j}u % 4u];
    var position = indices[tuple * params.k + {j}u];
    position = select(position, position + dim, position < 0);
    offset += u32(clamp(position, 0, dim - 1)) * params.strides[{j}u / 4u][{j}u % 4u];
  }
  //#end
  output[index] = data[offset];
}
