// Normalization over any group of elements: InstanceNormalization, GroupNormalization,
// MeanVarianceNormalization, RMSNormalization, and LayerNormalization when its Mean / InvStdDev
// outputs are read or its scale broadcasts (norm/layernorm*.wgsl run the plain rows faster):
//
//   mean[g]    = sum over the group of x / count            (0 when CENTER is off: RMS)
//   var[g]     = sum over the group of (x - mean[g])^2 / count
//   inv_std[g] = 1 / sqrt(var[g] + epsilon), or 1 / (sqrt(var[g]) + epsilon) (MVN's form)
//   y          = (x - mean[g]) * inv_std[g] * scale + bias
//
// The variance is taken of the centred values in a second pass, not as E[x^2] - mean^2, which
// cancels when |mean| >> std. The host splits x's dims into kept dims (up to 4 after merging,
// unravelled from the group index g) and reduced dims (up to 3, walked by nested loops, innermost
// first). Each dim has three strides: into x (and y, which has x's layout), into scale and into
// bias, the last two 0 where those broadcast, so no index is ever divided inside a group.
// mean[g] and inv_std[g] are written in group order (kept dims row-major: LayerNormalization's
// Mean and InvStdDev) or into scratch buffers nobody reads.
//
// Bindings (group 0):
//   @binding(0) x            storage, read   array<T>
//   @binding(1) scale        storage, read   array<T> (a placeholder without HAS_SCALE)
//   @binding(2) bias         storage, read   array<T> (a placeholder without HAS_BIAS)
//   @binding(3) output       storage, write  array<T>, x's shape
//   @binding(4) mean_out     storage, write  array<T>, one per group
//   @binding(5) inv_std_out  storage, write  array<T>, one per group
//   @binding(6) params       uniform         Params below
// Type aliases: T is f32 or f16 (arithmetic in f32).
// Override constants:
//   COOPERATIVE     true: one workgroup per group, the innermost reduced dim split across its
//                   invocations, sums combined by a tree in workgroup memory (long groups);
//                   false: one invocation per group, WORKGROUP_SIZE groups per workgroup.
//   HAS_SCALE, HAS_BIAS, WORKGROUP_SIZE (a power of two).
// Preludes: common/index.wgsl (fast_div). The grid may be 2-D for more than 65535 workgroups.

override COOPERATIVE: bool = false;
override HAS_SCALE: bool = true;
override HAS_BIAS: bool = true;
override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  groups: u32,
  kept_rank: u32,
  reduce_count: u32,
  // 1: subtract the mean; 0: RMSNormalization (mean 0).
  center: u32,
  epsilon: f32,
  // 1: epsilon is added to the standard deviation (MeanVarianceNormalization).
  epsilon_outside: u32,
  _pad0: u32,
  _pad1: u32,
  kept_shape: vec4<u32>,
  kept_inverse: vec4<f32>,
  kept_x: vec4<u32>,
  kept_scale: vec4<u32>,
  kept_bias: vec4<u32>,
  // Innermost first: dims[0] is walked fastest.
  reduce_dims: vec4<u32>,
  reduce_x: vec4<u32>,
  reduce_scale: vec4<u32>,
  reduce_bias: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> scale: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read_write> output: array<T>;
@group(0) @binding(4) var<storage, read_write> mean_out: array<T>;
@group(0) @binding(5) var<storage, read_write> inv_std_out: array<T>;
@group(0) @binding(6) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

// The sum of `value` over the workgroup (cooperative) or `value` itself. Every invocation of a
// cooperative workgroup calls it, in uniform control flow.
fn group_sum(local_index: u32, value: f32) -> f32 {
  if (!COOPERATIVE) { return value; }
  partial[local_index] = value;
  for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
    workgroupBarrier();
    if (local_index < half) { partial[local_index] += partial[local_index + half]; }
  }
  workgroupBarrier();
  let total = partial[0];
  // Everyone has read the total before the next sum overwrites partial[].
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let workgroup_index = workgroup.y * workgroups.x + workgroup.x;
  let g = select(workgroup_index * WORKGROUP_SIZE + local_index, workgroup_index, COOPERATIVE);
  // No early return: a cooperative workgroup must reach its barriers together.
  let in_range = g < params.groups;

  var rest = select(0u, g, in_range);
  var x_base = 0u;
  var scale_base = 0u;
  var bias_base = 0u;
  for (var dim = i32(params.kept_rank) - 1; dim >= 0; dim--) {
    let size = params.kept_shape[dim];
    let quotient = fast_div(rest, size, params.kept_inverse[dim]);
    let coord = rest - quotient * size;
    x_base += coord * params.kept_x[dim];
    scale_base += coord * params.kept_scale[dim];
    bias_base += coord * params.kept_bias[dim];
    rest = quotient;
  }

  let first = select(0u, local_index, COOPERATIVE);
  let step = select(1u, WORKGROUP_SIZE, COOPERATIVE);
  let dim0 = select(0u, params.reduce_dims[0], in_range);
  let count = f32(params.reduce_count);

  var mean = 0.0;
  if (params.center == 1u) {
    var sum = 0.0;
    for (var r2 = 0u; r2 < params.reduce_dims[2]; r2++) {
      for (var r1 = 0u; r1 < params.reduce_dims[1]; r1++) {
        let row = x_base + r2 * params.reduce_x[2] + r1 * params.reduce_x[1];
        for (var r0 = first; r0 < dim0; r0 += step) { sum += f32(x[row + r0 * params.reduce_x[0]]); }
      }
    }
    mean = group_sum(local_index, sum) / count;
  }

  var squares = 0.0;
  for (var r2 = 0u; r2 < params.reduce_dims[2]; r2++) {
    for (var r1 = 0u; r1 < params.reduce_dims[1]; r1++) {
      let row = x_base + r2 * params.reduce_x[2] + r1 * params.reduce_x[1];
      for (var r0 = first; r0 < dim0; r0 += step) {
        let centred = f32(x[row + r0 * params.reduce_x[0]]) - mean;
        squares += centred * centred;
      }
    }
  }
  let variance = group_sum(local_index, squares) / count;
  let inv_std = select(1.0 / sqrt(variance + params.epsilon), 1.0 / (sqrt(variance) + params.epsilon), params.epsilon_outside == 1u);

  for (var r2 = 0u; r2 < params.reduce_dims[2]; r2++) {
    for (var r1 = 0u; r1 < params.reduce_dims[1]; r1++) {
      let row = x_base + r2 * params.reduce_x[2] + r1 * params.reduce_x[1];
      let scale_row = scale_base + r2 * params.reduce_scale[2] + r1 * params.reduce_scale[1];
      let bias_row = bias_base + r2 * params.reduce_bias[2] + r1 * params.reduce_bias[1];
      for (var r0 = first; r0 < dim0; r0 += step) {
        let index = row + r0 * params.reduce_x[0];
        var y = (f32(x[index]) - mean) * inv_std;
        if (HAS_SCALE) { y *= f32(scale[scale_row + r0 * params.reduce_scale[0]]); }
        if (HAS_BIAS) { y += f32(bias[bias_row + r0 * params.reduce_bias[0]]); }
        output[index] = T(y);
      }
    }
  }
  if (in_range && first == 0u) {
    mean_out[g] = T(mean);
    inv_std_out[g] = T(inv_std);
  }
}
