// Softmax and LogSoftmax of short rows, one invocation per row (reduce/softmax.wgsl has the
// formulas and the long-row kernel, a workgroup per row):
//
//   v_j             = scale * x_j
//   softmax(x)_j    = exp(v_j - max(v)) / sum_i exp(v_i - max(v))
//   logsoftmax(x)_j = v_j - max(v) - log(sum_i exp(v_i - max(v)))
//
// `scale` is a constant factor folded in from the node before (attention's 1 / sqrt(d)); 1 when
// there is none. Taking the maximum of the scaled values keeps every exponent <= 0 for either
// sign of the scale.
//
// Why a kernel per row length: a row of a few dozen elements gives a 64-invocation workgroup
// almost nothing to do per invocation, and the tree reductions cost 2 * log2(64) barriers. Here
// an invocation walks its row three times (max, sum, write) with no workgroup memory and no
// barrier. Rows (outer, inner_index) are numbered inner_index fastest, so when inner > 1
// neighbouring invocations read neighbouring addresses.
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) output  storage, write  array<T> (same shape)
//   @binding(2) params  uniform         Params below
// Type aliases: T is f32 or f16 (arithmetic in f32).
// Override constants: WORKGROUP_SIZE (rows per workgroup). Preludes: common/index.wgsl.
// The grid may be 2-D for more than 65535 workgroups.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  rows: u32,
  axis_len: u32,
  inner: u32,
  // 1 for LogSoftmax.
  log_output: u32,
  scale: f32,
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
  let stride = params.inner;
  let outer = fast_div(row, stride, params.inner_inverse);
  let base = outer * params.axis_len * stride + (row - outer * stride);
  let scale = params.scale;
  let end = base + params.axis_len * stride;

  var row_max = -3.402823466e+38;
  for (var i = base; i < end; i += stride) {
    row_max = max(row_max, scale * f32(input[i]));
  }
  var total = 0.0;
  for (var i = base; i < end; i += stride) {
    total += exp(scale * f32(input[i]) - row_max);
  }

  if (params.log_output == 1u) {
    // (v - max) first: max + log(sum) would round away log(sum) when |max| is huge.
    let log_total = log(total);
    for (var i = base; i < end; i += stride) {
      output[i] = T((scale * f32(input[i]) - row_max) - log_total);
    }
  } else {
    let inverse_sum = 1.0 / total;
    for (var i = base; i < end; i += stride) {
      output[i] = T(exp(scale * f32(input[i]) - row_max) * inverse_sum);
    }
  }
}
