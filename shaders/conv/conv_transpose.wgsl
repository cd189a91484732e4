// 2-D transposed convolution (NCHW, groups, strides, pads, dilations, output padding), as the
// gather of every input pixel that scatters into each output pixel:
//
//   y[image, co, oh, ow] = act(bias[co] + sum over ci in co's group, kh, kw of
//                            x[image, ci, ih, iw] * w[ci, co % Cout_g, kh, kw])
//   where oh = ih * sh - pt + kh * dh  (so ih = (oh + pt - kh * dh) / sh when that divides)
//
// Bindings (group 0):
//   @binding(0) x         storage, read   array<T>
//   @binding(1) w         storage, read   array<T>, [C_in, C_out / groups, KH, KW]
//   @binding(2) bias      storage, read   array<T>; any buffer when HAS_BIAS is false
//   @binding(3) output    storage, write  array<T>
//   @binding(4) params    uniform         Params below
// Type aliases: T is f32 or f16. Override constants: HAS_BIAS, WORKGROUP_SIZE.
// Preludes: common/index.wgsl, common/unary_ops.wgsl.
// Grid: x walks output positions (one per invocation), y and z walk the N * C_out planes.

override HAS_BIAS: bool = false;
override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  planes: u32,
  out_channels: u32,
  out_channels_per_group: u32,
  in_channels_per_group: u32,
  in_h: i32,
  in_w: i32,
  out_h: u32,
  out_w: u32,
  out_w_inverse: f32,
  kernel_h: i32,
  kernel_w: i32,
  stride_h: i32,
  stride_w: i32,
  pad_top: i32,
  pad_left: i32,
  dilation_h: i32,
  dilation_w: i32,
  act: u32,
  act_alpha: f32,
  act_beta: f32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> w: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
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
  if (plane >= params.planes || position >= params.out_h * params.out_w) { return; }
  let image = plane / params.out_channels;
  let channel = plane - image * params.out_channels;
  let group = channel / params.out_channels_per_group;
  let channel_in_group = channel - group * params.out_channels_per_group;
  let oh = fast_div(position, params.out_w, params.out_w_inverse);
  let ow = position - oh * params.out_w;
  let in_hw = u32(params.in_h * params.in_w);
  let kernel_hw = u32(params.kernel_h * params.kernel_w);
  let in_channels = params.in_channels_per_group * (params.out_channels / params.out_channels_per_group);

  var acc = 0.0;
  for (var i = 0; i < params.kernel_h; i++) {
    let h_scaled = i32(oh) + params.pad_top - i * params.dilation_h;
    if (h_scaled < 0 || h_scaled % params.stride_h != 0) { continue; }
    let h = h_scaled / params.stride_h;
    if (h >= params.in_h) { continue; }
    for (var j = 0; j < params.kernel_w; j++) {
      let w_scaled = i32(ow) + params.pad_left - j * params.dilation_w;
      if (w_scaled < 0 || w_scaled % params.stride_w != 0) { continue; }
      let v = w_scaled / params.stride_w;
      if (v >= params.in_w) { continue; }
      for (var c = 0u; c < params.in_channels_per_group; c++) {
        let ci = group * params.in_channels_per_group + c;
        let x_index = (image * in_channels + ci) * in_hw + u32(h * params.in_w + v);
        let w_index = (ci * params.out_channels_per_group + channel_in_group) * kernel_hw + u32(i * params.kernel_w + j);
        acc = fma(f32(x[x_index]), f32(w[w_index]), acc);
      }
    }
  }
  if (HAS_BIAS) { acc += f32(bias[channel]); }
  output[plane * params.out_h * params.out_w + position] = T(unary_op(acc, params.act, params.act_alpha, params.act_beta));
}
