// Trilu: the upper (or lower) triangular part of each matrix in the last two dims, the rest 0:
//
//   keep(row, col) = col - row >= k  (upper)   |   col - row <= k  (lower)
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>, [..., rows, cols]
//   @binding(1) output  storage, write  array<T>, same shape
//   @binding(2) params  uniform         Params below
// Type aliases: T is f32, f16 or i32. Override constants: WORKGROUP_SIZE (one element per
// invocation). Preludes: common/index.wgsl (fast_div). The grid may be 2-D.

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  rows: u32,
  cols: u32,
  upper: u32,
  // The diagonal offset, clamped by the host to ±(rows + cols), which keeps its meaning.
  k: i32,
  rows_inverse: f32,
  cols_inverse: f32,
  _pad0: u32,
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
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }
  let matrix_row = fast_div(index, params.cols, params.cols_inverse);
  let col = index - matrix_row * params.cols;
  let row = matrix_row - fast_div(matrix_row, params.rows, params.rows_inverse) * params.rows;
  let offset = i32(col) - i32(row);
  let keep = select(offset <= params.k, offset >= params.k, params.upper == 1u);
  output[index] = select(T(0), input[index], keep);
}
