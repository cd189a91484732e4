// Depthwise 2-D convolution (groups == input channels, NCHW), direct: each output channel co
// reads only input channel co / multiplier, where multiplier = C_out / C_in.
//
//   y[image, co, oh, ow] = act(sum_{kh, kw} x[image, co / multiplier, oh * sh - pt + kh * dh, ow * sw - pl + kw * dw]
//                                           * w[co, 0, kh, kw]  + bias[co] + residual)
//
// Bindings (group 0):
//   @binding(0) x         storage, read   array<T>
//   @binding(1) w         storage, read   array<T>, [C_out, 1, KH, KW]
//   @binding(2) bias      storage, read   array<T>; any buffer when HAS_BIAS is false
//   @binding(3) residual  storage, read   array<T>, y's shape; any buffer without HAS_RESIDUAL
//   @binding(4) output    storage, write  array<T>
//   @binding(5) params    uniform         Params below
// Type aliases: T is f32 or f16. Override constants: HAS_BIAS, HAS_RESIDUAL, WORKGROUP_SIZE.
// Preludes: common/index.wgsl, common/unary_ops.wgsl.
// Grid: x walks output positions (one per invocation), y and z walk the N * C_out planes.

override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;
override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  planes: u32,
  out_channels: u32,
  multiplier: u32,
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
  _pad0: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> w: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read> residual: array<T>;
@group(0) @binding(4) var<storage, read_write> output: array<T>;
@group(0) @binding(5) var<uniform> params: Params;

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
  let in_plane = image * (params.out_channels / params.multiplier) + channel / params.multiplier;
  let oh = fast_div(position, params.out_w, params.out_w_inverse);
  let ow = position - oh * params.out_w;
  let h0 = i32(oh) * params.stride_h - params.pad_top;
  let w0 = i32(ow) * params.stride_w - params.pad_left;
  let x_base = in_plane * u32(params.in_h * params.in_w);
  let w_base = channel * u32(params.kernel_h * params.kernel_w);

  var acc = 0.0;
  for (var i = 0; i < params.kernel_h; i++) {
    let h = h0 + i * params.dilation_h;
    if (h < 0 || h >= params.in_h) { continue; }
    for (var j = 0; j < params.kernel_w; j++) {
      let v = w0 + j * params.dilation_w;
      if (v < 0 || v >= params.in_w) { continue; }
      acc = fma(f32(x[x_base + u32(h * params.in_w + v)]), f32(w[w_base + u32(i * params.kernel_w + j)]), acc);
    }
  }
  let out_index = plane * params.out_h * params.out_w + position;
  if (HAS_BIAS) { acc += f32(bias[channel]); }
  if (HAS_RESIDUAL) { acc += f32(residual[out_index]); }
  output[out_index] = T(unary_op(acc, params.act, params.act_alpha, params.act_beta));
}
