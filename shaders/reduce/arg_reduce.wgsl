// ArgMax / ArgMin along one axis: the index of the largest (smallest) element of each row, the
// first one among equals, or the last with select_last_index.
//
// The tensor is viewed as [outer, axis_len, inner]; a row is the axis_len elements that share
// (outer, inner), inner apart in memory. One invocation per row, numbered inner index fastest,
// so neighbouring invocations read neighbouring addresses. Elements are compared in their own
// type (integers stay exact).
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) output  storage, write  array<i32>, outer * inner indices (INT64 stored as i32)
//   @binding(2) params  uniform         Params below
// Type aliases: T is f32, f16 or i32. Override constants: WORKGROUP_SIZE (rows per workgroup).
// Preludes: common/index.wgsl (fast_div). The grid may be 2-D for more than 65535 workgroups.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  rows: u32,
  axis_len: u32,
  inner: u32,
  // 1: ArgMin.
  smallest: u32,
  select_last: u32,
  inner_inverse: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read_write> output: array<i32>;
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
  var best = input[base];
  var best_index = 0u;
  for (var j = 1u; j < params.axis_len; j++) {
    let value = input[base + j * params.inner];
    let better = select(value > best, value < best, params.smallest == 1u);
    if (better || (params.select_last == 1u && value == best)) {
      best = value;
      best_index = j;
    }
  }
  output[row] = i32(best_index);
}
