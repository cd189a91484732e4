// The uniform block of the N-d direct convolutions (conv_nd.wgsl, conv_transpose_nd.wgsl), as
// kernels/window-nd.ts writes it for both.

struct Params {
  count: u32,
  out_channels: u32,
  out_per_group: u32,
  in_per_group: u32,
  // Spatial dims as (depth, height, width, unused).
  in_shape: vec4<i32>,
  out_shape: vec4<u32>,
  // 1 / out width, 1 / out height, 1 / out depth, 1 / output channels.
  inverse: vec4<f32>,
  kernel: vec4<i32>,
  stride: vec4<i32>,
  pad: vec4<i32>,
  dilation: vec4<i32>,
  act: u32,
  act_alpha: f32,
  act_beta: f32,
  _pad: u32,
}
