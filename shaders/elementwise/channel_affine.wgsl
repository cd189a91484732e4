// Per-channel affine map with a fused activation (BatchNormalization in inference when it could
// not be folded into a convolution):
//
//   y[plane, i] = act(x[plane, i] * scale[c] + shift[c]),   c = plane % C
//
// where plane walks the N * C planes of an [N, C, ...] tensor. The host folds mean, variance,
// epsilon, scale and bias into scale = gamma / sqrt(var + eps), shift = beta - mean * scale.
//
// Bindings (group 0):
//   @binding(0) x       storage, read   array<T>
//   @binding(1) scale   storage, read   array<T>, [C]
//   @binding(2) shift   storage, read   array<T>, [C]
//   @binding(3) output  storage, write  array<T>
//   @binding(4) params  uniform         Params below
// Type aliases: T is f32 or f16. Override constants: WORKGROUP_SIZE.
// Preludes: common/unary_ops.wgsl. Grid: x walks a plane, y and z walk the planes.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  planes: u32,
  channels: u32,
  plane_size: u32,
  act: u32,
  act_alpha: f32,
  act_beta: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> scale: array<T>;
@group(0) @binding(2) var<storage, read> shift: array<T>;
@group(0) @binding(3) var<storage, read_write> output: array<T>;
@group(0) @binding(4) var<uniform> params: Params;

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
  let index = plane * params.plane_size + position;
  let y = fma(f32(x[index]), f32(scale[channel]), f32(shift[channel]));
  output[index] = T(unary_op(y, params.act, params.act_alpha, params.act_beta));
}
