// The uniform block of the 2-D pool kernels (pool.wgsl, max_pool_indices.wgsl), written by
// kernels/conv.ts poolDispatch: one layout, so a MaxPool with Indices takes the plain pool's
// dispatch unchanged.

struct Params {
  planes: u32,
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
  // Where the padded input ends (in_h + pad_bottom, in_w + pad_right), for count_include_pad.
  padded_end_h: i32,
  padded_end_w: i32,
  count_include_pad: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}
