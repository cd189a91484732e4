// TopK: one workgroup per row (the axis, strided by `inner`), K rounds. Round j finds the best
// element after round j - 1's pick in the order (largest: greater value first; smallest: lesser
// value first; equal values by lower index), each lane over its strided share of the row, then
// a tree over the lanes; so the output is sorted, ties broken by index as onnxruntime does.
//
//   values[o, j, i] = input[o, pick_j, i],   indices[o, j, i] = pick_j
//
// Bindings (group 0):
//   @binding(0) input    storage, read   array<T>
//   @binding(1) values   storage, write  array<T>
//   @binding(2) indices  storage, write  array<i32>
//   @binding(3) params   uniform         Params below
// Type aliases: T is f32, f16 or i32. Preludes: common/index.wgsl (fast_div).

const LANES: u32 = 64u;

struct Params {
  rows: u32,
  length: u32,
  inner: u32,
  k: u32,
  largest: u32,
  inner_inverse: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read_write> values: array<T>;
@group(0) @binding(2) var<storage, read_write> indices: array<i32>;
@group(0) @binding(3) var<uniform> params: Params;

var<workgroup> best_values: array<T, LANES>;
var<workgroup> best_indices: array<i32, LANES>;

/** Whether (a_value, a_index) comes before (b_value, b_index); index -1 is "nothing", after everything. */
fn before(a_value: T, a_index: i32, b_value: T, b_index: i32) -> bool {
  if (a_index < 0) { return false; }
  if (b_index < 0) { return true; }
  if (a_value == b_value) { return a_index < b_index; }
  return select((a_value < b_value), (a_value > b_value), params.largest == 1u);
}

@compute @workgroup_size(LANES)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let row = workgroup.y * workgroups.x + workgroup.x;
  // No early return: every lane of the workgroup reaches the barriers.
  let in_range = row < params.rows;
  let outer = fast_div(row, params.inner, params.inner_inverse);
  let i = row - outer * params.inner;
  let base = outer * params.length * params.inner + i;
  let out_base = outer * params.k * params.inner + i;
  var previous_value = T(0);
  var previous_index = -1;
  for (var j = 0u; j < params.k; j++) {
    var value = T(0);
    var index = -1;
    if (in_range) {
      for (var e = lane; e < params.length; e += LANES) {
        let candidate = input[base + e * params.inner];
        let at = i32(e);
        if ((previous_index < 0 || before(previous_value, previous_index, candidate, at)) && before(candidate, at, value, index)) {
          value = candidate;
          index = at;
        }
      }
    }
    best_values[lane] = value;
    best_indices[lane] = index;
    workgroupBarrier();
    for (var stride = LANES / 2u; stride > 0u; stride /= 2u) {
      if ((lane < stride) && before(best_values[lane + stride], best_indices[lane + stride], best_values[lane], best_indices[lane])) {
        best_values[lane] = best_values[lane + stride];
        best_indices[lane] = best_indices[lane + stride];
      }
      workgroupBarrier();
    }
    previous_value = best_values[0];
    previous_index = best_indices[0];
    if (in_range && lane == 0u) {
      values[out_base + j * params.inner] = previous_value;
      indices[out_base + j * params.inner] = previous_index;
    }
    workgroupBarrier();
  }
}
