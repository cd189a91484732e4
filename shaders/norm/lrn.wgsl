// Local response normalization across channels (LRN):
//
//   square_sum[n, c, p] = sum over j in [c - before, c + after] ∩ [0, C) of x[n, j, p]^2
//   y[n, c, p]          = x[n, c, p] / (bias + alpha / size * square_sum)^beta
//
// with before = floor((size - 1) / 2) and after = ceil((size - 1) / 2), as ONNX defines the
// window (an even size reaches one channel further up than down).
//
// Bindings (group 0):
//   @binding(0) x       storage, read   array<T>, [N, C, spatial...]
//   @binding(1) output  storage, write  array<T>, same shape
//   @binding(2) params  uniform         Params below
// Type aliases: T is f32 or f16 (arithmetic in f32). Override constants: WORKGROUP_SIZE.
// Grid: x walks the positions p of a plane, y and z walk the N * C planes, so no invocation
// divides an index.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  planes: u32,
  channels: u32,
  plane_size: u32,
  before: u32,
  after: u32,
  // alpha / size, folded on the host.
  alpha_over_size: f32,
  beta: f32,
  bias: f32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read_write> output: array<T>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let plane = workgroup.z * workgroups.y + workgroup.y;
  let position = workgroup.x * WORKGROUP_SIZE + local_index;
  if (plane >= params.planes || position >= params.plane_size) { return; }
  let channel = plane % params.channels;
  let first = channel - min(channel, params.before);
  let last = min(channel + params.after, params.channels - 1u);
  // The plane of channel 0 of this sample.
  let sample_base = (plane - channel) * params.plane_size + position;
  var square_sum = 0.0;
  for (var j = first; j <= last; j++) {
    let value = f32(x[sample_base + j * params.plane_size]);
    square_sum += value * value;
  }
  let index = plane * params.plane_size + position;
  let base = params.bias + params.alpha_over_size * square_sum;
  output[index] = T(f32(x[index]) * pow(base, -params.beta));
}
