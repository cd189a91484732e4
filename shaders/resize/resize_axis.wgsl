// Resize along one axis (one pass of a separable resize): the input viewed as
// [outer, in_len, inner] becomes [outer, out_len, inner], and output position j along the axis
// reads the `taps` input positions of table row j with its weights (computed on the host in f32
// as the reference computes them):
//
//   output[o, j, i] = sum_t weight[j, t] * input[o, position[j, t], i]
//
// A first position of -1 takes the extrapolation value (tf_crop_and_resize outside the input).
// One tap (nearest) copies the element itself, so integers pass unchanged.
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) table   storage, read   array<u32>   per row: taps positions (i32), then taps weights (f32)
//   @binding(2) output  storage, write  array<T>
//   @binding(3) params  uniform         Params below
// Type aliases: T is f32, f16 or i32. Override constants: WORKGROUP_SIZE.
// Preludes: common/index.wgsl (fast_div).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  out_len: u32,
  inner: u32,
  in_len: u32,
  taps: u32,
  out_len_inverse: f32,
  inner_inverse: f32,
  extrapolation: f32,
}

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read> table: array<u32>;
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
  let o = fast_div(outer_j, params.out_len, params.out_len_inverse);
  let j = outer_j - o * params.out_len;
  let row = j * params.taps * 2u;
  let first = bitcast<i32>(table[row]);
  if (first < 0) {
    output[index] = T(params.extrapolation);
    return;
  }
  let base = o * params.in_len;
  if (params.taps == 1u) {
    output[index] = input[(base + u32(first)) * params.inner + i];
    return;
  }
  var sum = 0.0;
  for (var tap = 0u; tap < params.taps; tap++) {
    let position = table[row + tap];
    let weight = bitcast<f32>(table[row + params.taps + tap]);
    sum += f32(input[(base + position) * params.inner + i]) * weight;
  }
  output[index] = T(sum);
}
