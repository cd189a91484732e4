// LayerNormalization over the trailing dims of each row (opset 17, inference):
//
//   mean = sum(x) / D,   var = sum((x - mean)^2) / D
//   y    = (x - mean) / sqrt(var + epsilon) * scale + bias
//
// The variance is taken of the centred values (a second pass over the row), not as
// E[x^2] - mean^2, which cancels catastrophically when |mean| >> std.
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>, rows of D contiguous elements
//   @binding(1) scale   storage, read   array<T>, D elements (or 1, broadcast)
//   @binding(2) bias    storage, read   array<T>, D elements (or 1); any buffer when HAS_BIAS is false
//   @binding(3) output  storage, write  array<T>
//   @binding(4) params  uniform         Params below
// Type aliases: T is f32 or f16 (arithmetic in f32).
// Override constants: HAS_BIAS; WORKGROUP_SIZE (a power of two) invocations per row.

override HAS_BIAS: bool = true;
override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  rows: u32,
  length: u32,
  epsilon: f32,
  // 1 when scale / bias have D elements, 0 when they are a single broadcast value.
  scale_stride: u32,
  bias_stride: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read> scale: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read_write> output: array<T>;
@group(0) @binding(4) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

// Leaves sum of all partial[] in partial[0]; every invocation must call it.
fn sum_partials(local_index: u32) -> f32 {
  for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
    workgroupBarrier();
    if (local_index < half) {
      partial[local_index] = partial[local_index] + partial[local_index + half];
    }
  }
  workgroupBarrier();
  let total = partial[0];
  // Everyone has read partial[0] before the next pass overwrites it.
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let row = workgroup.y * workgroups.x + workgroup.x;
  if (row >= params.rows) { return; }
  let base = row * params.length;
  let count = f32(params.length);

  var sum = 0.0;
  for (var j = local_index; j < params.length; j += WORKGROUP_SIZE) {
    sum += f32(input[base + j]);
  }
  partial[local_index] = sum;
  let mean = sum_partials(local_index) / count;

  var squares = 0.0;
  for (var j = local_index; j < params.length; j += WORKGROUP_SIZE) {
    let centred = f32(input[base + j]) - mean;
    squares += centred * centred;
  }
  partial[local_index] = squares;
  let inverse_std = inverseSqrt(sum_partials(local_index) / count + params.epsilon);

  for (var j = local_index; j < params.length; j += WORKGROUP_SIZE) {
    var y = (f32(input[base + j]) - mean) * inverse_std * f32(scale[j * params.scale_stride]);
    if (HAS_BIAS) { y += f32(bias[j * params.bias_stride]); }
    output[base + j] = T(y);
  }
}
