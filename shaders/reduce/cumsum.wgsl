// CumSum along one axis: each element replaced by the sum of the elements before it on its row
// (and itself, unless exclusive), walking from the row's end instead with reverse.
//
// The tensor is viewed as [outer, axis_len, inner]; a row is the axis_len elements that share
// (outer, inner), inner apart in memory. One invocation per row adds its elements in order,
// the order onnxruntime adds them in, numbered inner index fastest so that neighbouring
// invocations read neighbouring addresses.
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) output  storage, write  array<T> (same shape)
//   @binding(2) params  uniform         Params below
// Type aliases: T is f32, f16 or i32; A, the running sum's type, is f32 for floats, i32 for
// integers. Override constants: WORKGROUP_SIZE (rows per workgroup).
// Preludes: common/index.wgsl (fast_div). The grid may be 2-D for more than 65535 workgroups.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  rows: u32,
  axis_len: u32,
  inner: u32,
  exclusive: u32,
  reverse: u32,
  inner_inverse: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read_write> output: array<T>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let row = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (row >= params.rows) { return; }
  let outer = fast_div(row, params.inner, params.inner_inverse);
  let base = outer * params.axis_len * params.inner + (row - outer * params.inner);
  var sum = A(0);
  for (var step = 0u; step < params.axis_len; step++) {
    let j = select(step, params.axis_len - 1u - step, params.reverse == 1u);
    let index = base + j * params.inner;
    let value = A(input[index]);
    if (params.exclusive == 1u) {
      output[index] = T(sum);
      sum += value;
    } else {
      sum += value;
      output[index] = T(sum);
    }
  }
}
