// LayerNormalization of short rows, one invocation per row, read as vec4s (norm/layernorm.wgsl
// has the formula and the long-row kernel, a workgroup per row):
//
//   mean = sum(x) / D,   var = sum((x - mean)^2) / D      (two passes, as the long-row kernel)
//   y    = (x - mean) / sqrt(var + epsilon) * scale + bias
//
// Why: on a row of 64 elements a 64-invocation workgroup does one element per invocation and
// then 2 * log2(64) barriers per pass; here an invocation walks its row three times with no
// workgroup memory and no barrier, 4 elements per load. Needs D a multiple of 4.
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<vec4<T>>, rows of D / 4 contiguous vec4s
//   @binding(1) scale   storage, read   array<vec4<T>>, D / 4 vec4s (or 1 value in lane x, broadcast)
//   @binding(2) bias    storage, read   array<vec4<T>>, as scale; any buffer when HAS_BIAS is false
//   @binding(3) output  storage, write  array<vec4<T>>
//   @binding(4) params  uniform         Params below (norm/layernorm.wgsl's block)
// Type aliases: T is f32 or f16 (arithmetic in f32).
// Override constants: HAS_BIAS; WORKGROUP_SIZE rows per workgroup. The grid may be 2-D.

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

@group(0) @binding(0) var<storage, read> input: array<vec4<T>>;
@group(0) @binding(1) var<storage, read> scale: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<T>>;
@group(0) @binding(3) var<storage, read_write> output: array<vec4<T>>;
@group(0) @binding(4) var<uniform> params: Params;

// Element j4 of a per-element vector, or its single value in every lane when stride is 0.
fn broadcast4(value: vec4<f32>, stride: u32) -> vec4<f32> {
  return select(vec4<f32>(value.x), value, stride == 1u);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let row = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (row >= params.rows) { return; }
  let length4 = params.length / 4u;
  let base = row * length4;
  let count = f32(params.length);

  var sum = vec4<f32>();
  for (var j = 0u; j < length4; j++) {
    sum += vec4<f32>(input[base + j]);
  }
  let mean = (sum.x + sum.y + sum.z + sum.w) / count;

  var squares = vec4<f32>();
  for (var j = 0u; j < length4; j++) {
    let centred = vec4<f32>(input[base + j]) - mean;
    squares += centred * centred;
  }
  let inverse_std = inverseSqrt((squares.x + squares.y + squares.z + squares.w) / count + params.epsilon);

  for (var j = 0u; j < length4; j++) {
    let gain = broadcast4(vec4<f32>(scale[j * params.scale_stride]), params.scale_stride);
    var y = (vec4<f32>(input[base + j]) - mean) * inverse_std * gain;
    if (HAS_BIAS) { y += broadcast4(vec4<f32>(bias[j * params.bias_stride]), params.bias_stride); }
    output[base + j] = vec4<T>(y);
  }
}
