// Integer convolution (ConvInteger, QLinearConv), direct, one invocation per output element,
// over 3 spatial dims (lower ranks have leading dims of 1):
//   acc = bias[m] + sum (x[n, g * Cg + c, ...] - x_zero) * (w[m, c, ...] - w_zero[m])   exact in i32
// Padding holds the zero point, so padded taps add nothing and are skipped.
//   out = acc, or clamp(round_half_even(f32(acc) * multiplier[m]) + y_zero, low, high)
//
// Bindings (group 0):
//   @binding(0) x           storage, read   array<i32>  [N, C, D, H, W]
//   @binding(1) w           storage, read   array<i32>  [M, C / group, KD, KH, KW]
//   @binding(2) x_zero      storage, read   array<i32>  [1]
//   @binding(3) w_zero      storage, read   array<i32>  [M]
//   @binding(4) multiplier  storage, read   array<f32>  [M]
//   @binding(5) bias        storage, read   array<i32>  [M]
//   @binding(6) output      storage, write  array<i32>  [N, M, OD, OH, OW]
//   @binding(7) params      uniform         Params below
// Override constants: WORKGROUP_SIZE. The grid may be 2-D.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  count: u32,
  group_in_channels: u32,
  out_channels: u32,
  group_out_channels: u32,
  requantize: u32,
  low: i32,
  high: i32,
  y_zero: i32,
  in_spatial: vec4<u32>,
  out_spatial: vec4<u32>,
  kernel: vec4<u32>,
  strides: vec4<u32>,
  dilations: vec4<u32>,
  pad_begin: vec4<i32>,
}

@group(0) @binding(0) var<storage, read> x: array<i32>;
@group(0) @binding(1) var<storage, read> w: array<i32>;
@group(0) @binding(2) var<storage, read> x_zero: array<i32>;
@group(0) @binding(3) var<storage, read> w_zero: array<i32>;
@group(0) @binding(4) var<storage, read> multiplier: array<f32>;
@group(0) @binding(5) var<storage, read> bias: array<i32>;
@group(0) @binding(6) var<storage, read_write> output: array<i32>;
@group(0) @binding(7) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }
  let out_s = params.out_spatial;
  let in_s = params.in_spatial;
  let ow = index % out_s.z;
  let oh = (index / out_s.z) % out_s.y;
  let od = (index / (out_s.z * out_s.y)) % out_s.x;
  let plane = out_s.x * out_s.y * out_s.z;
  let channel = (index / plane) % params.out_channels;
  let image = index / (plane * params.out_channels);
  let group = channel / params.group_out_channels;
  let in_plane = in_s.x * in_s.y * in_s.z;
  let kernel_volume = params.kernel.x * params.kernel.y * params.kernel.z;
  let zero_x = x_zero[0];
  let zero_w = w_zero[channel];
  var acc = bias[channel];
  for (var c = 0u; c < params.group_in_channels; c++) {
    let x_base = (image * (params.group_in_channels * (params.out_channels / params.group_out_channels)) + group * params.group_in_channels + c) * in_plane;
    let w_base = (channel * params.group_in_channels + c) * kernel_volume;
    for (var kd = 0u; kd < params.kernel.x; kd++) {
      let id = i32(od * params.strides.x + kd * params.dilations.x) - params.pad_begin.x;
      if (id < 0 || id >= i32(in_s.x)) { continue; }
      for (var kh = 0u; kh < params.kernel.y; kh++) {
        let ih = i32(oh * params.strides.y + kh * params.dilations.y) - params.pad_begin.y;
        if (ih < 0 || ih >= i32(in_s.y)) { continue; }
        for (var kw = 0u; kw < params.kernel.z; kw++) {
          let iw = i32(ow * params.strides.z + kw * params.dilations.z) - params.pad_begin.z;
          if (iw < 0 || iw >= i32(in_s.z)) { continue; }
          let x_at = x_base + (u32(id) * in_s.y + u32(ih)) * in_s.z + u32(iw);
          let w_at = w_base + (kd * params.kernel.y + kh) * params.kernel.z + kw;
          acc += (x[x_at] - zero_x) * (w[w_at] - zero_w);
        }
      }
    }
  }
  if (params.requantize == 0u) {
    output[index] = acc;
    return;
  }
  let scaled = round(f32(acc) * multiplier[channel]) + f32(params.y_zero);
  output[index] = i32(clamp(scaled, f32(params.low), f32(params.high)));
}
