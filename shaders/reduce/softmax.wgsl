// Numerically stable Softmax and LogSoftmax along one axis:
//
//   v_j             = scale * x_j
//   softmax(x)_j    = exp(v_j - max(v)) / sum_i exp(v_i - max(v))
//   logsoftmax(x)_j = v_j - max(v) - log(sum_i exp(v_i - max(v)))
//
// Subtracting the row maximum keeps every exponent <= 0, so exp never overflows and the largest
// term is exactly 1 (the sum is >= 1, its log never -inf). `scale` is a constant factor folded in
// from the node before (attention's 1 / sqrt(d)); 1 when there is none.
//
// This kernel is for long rows; reduce/softmax_rows.wgsl runs short rows an invocation each.
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) output  storage, write  array<T> (same shape)
//   @binding(2) params  uniform         Params below
// Type aliases: T is f32 or f16 (arithmetic in f32).
// Override constants:
//   WORKGROUP_SIZE  invocations cooperating on one row (a power of two)
//
// The tensor is viewed as [outer, axis_len, inner]; a "row" is the axis_len elements that share
// (outer, inner), inner apart in memory. One workgroup per row (row = outer * inner + inner_index);
// each invocation strides over the row, then a tree reduction in workgroup memory combines the
// partial max, and again the partial sum. The grid may be 2-D for more than 65535 rows.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  rows: u32,
  axis_len: u32,
  inner: u32,
  // 1 for LogSoftmax.
  log_output: u32,
  scale: f32,
  // Read by reduce/softmax_rows.wgsl, which shares this block.
  inner_inverse: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read_write> output: array<T>;
@group(0) @binding(2) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

// Leaves max (is_max) or sum of all partial[] in partial[0]; every invocation must call it.
fn reduce_partials(local_index: u32, is_max: bool) {
  for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
    workgroupBarrier();
    if (local_index < half) {
      let other = partial[local_index + half];
      if (is_max) {
        partial[local_index] = max(partial[local_index], other);
      } else {
        partial[local_index] = partial[local_index] + other;
      }
    }
  }
  workgroupBarrier();
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let row = workgroup.y * workgroups.x + workgroup.x;
  // The whole workgroup leaves together, so the barriers below stay in uniform control flow.
  if (row >= params.rows) { return; }
  let outer = row / params.inner;
  let base = outer * params.axis_len * params.inner + row % params.inner;
  let stride = params.inner;
  let scale = params.scale;

  var row_max = -3.402823466e+38;
  for (var j = local_index; j < params.axis_len; j += WORKGROUP_SIZE) {
    row_max = max(row_max, scale * f32(input[base + j * stride]));
  }
  partial[local_index] = row_max;
  reduce_partials(local_index, true);
  row_max = partial[0];
  // Everyone has read partial[0] before it is overwritten by the sum pass.
  workgroupBarrier();

  var row_sum = 0.0;
  for (var j = local_index; j < params.axis_len; j += WORKGROUP_SIZE) {
    row_sum += exp(scale * f32(input[base + j * stride]) - row_max);
  }
  partial[local_index] = row_sum;
  reduce_partials(local_index, false);
  let total = partial[0];

  if (params.log_output == 1u) {
    let log_total = log(total);
    for (var j = local_index; j < params.axis_len; j += WORKGROUP_SIZE) {
      output[base + j * stride] = T(scale * f32(input[base + j * stride]) - row_max - log_total);
    }
  } else {
    let inverse_sum = 1.0 / total;
    for (var j = local_index; j < params.axis_len; j += WORKGROUP_SIZE) {
      output[base + j * stride] = T(exp(scale * f32(input[base + j * stride]) - row_max) * inverse_sum);
    }
  }
}
