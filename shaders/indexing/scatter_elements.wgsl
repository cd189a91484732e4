// ScatterElements along one axis, after the output holds a copy of the data: one invocation per
// line of updates (every coordinate but the axis), walking the line in order, so repeated
// indices combine in the order ONNX lists them:
//
//   output[c with c_axis = wrap(indices[c])] = combine(that element, updates[c])
//
// combine by REDUCTION: 0 none (replace), 1 add, 2 mul, 3 max, 4 min. Out-of-range indices
// (invalid ONNX) are clamped into the axis.
//
// Bindings (group 0):
//   @binding(0) indices  storage, read        array<i32>
//   @binding(1) updates  storage, read        array<T>
//   @binding(2) output   storage, read_write  array<T>
//   @binding(3) params   uniform              Params below
// Type aliases: T is f32, f16 or i32.
// Override constants: WORKGROUP_SIZE. Unrolled: MAX_RANK. Preludes: common/index.wgsl.

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  lines: u32,
  rank: u32,
  axis_len: u32,
  data_axis_len: u32,
  update_axis_stride: u32,
  data_axis_stride: u32,
  reduction: u32,
  _pad: u32,
  // The updates' dims with the axis set to 1, and both tensors' strides, innermost first.
  line_shape: array<vec4<u32>, 2>,
  line_inverse: array<vec4<f32>, 2>,
  update_strides: array<vec4<u32>, 2>,
  data_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> indices: array<i32>;
@group(0) @binding(1) var<storage, read> updates: array<T>;
@group(0) @binding(2) var<storage, read_write> output: array<T>;
@group(0) @binding(3) var<uniform> params: Params;

fn combine(old: T, update: T) -> T {
  switch (params.reduction) {
    case 1u: { return old + update; }
    case 2u: { return old * update; }
    case 3u: { return max(old, update); }
    case 4u: { return min(old, update); }
    default: { return update; }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let line = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (line >= params.lines) { return; }
  var rest = line;
  var update_offset = 0u;
  var data_offset = 0u;
  //#for d in MAX_RANK
  if ({d}u < params.rank) {
    let size = params.line_shape[{d}u / 4u][{d}u % 4u];
    let quotient = fast_div(rest, size, params.line_inverse[{d}u / 4u][{d}u % 4u]);
    let coord = rest - quotient * size;
    rest = quotient;
    update_offset += coord * params.update_strides[{d}u / 4u][{d}u % 4u];
    data_offset += coord * params.data_strides[{d}u / 4u][{d}u % 4u];
  }
  //#end
  for (var j = 0u; j < params.axis_len; j++) {
    let at = update_offset + j * params.update_axis_stride;
    var k = indices[at];
    k = select(k, k + i32(params.data_axis_len), k < 0);
    let destination = data_offset + u32(clamp(k, 0, i32(params.data_axis_len) - 1)) * params.data_axis_stride;
    output[destination] = combine(output[destination], updates[at]);
  }
}
