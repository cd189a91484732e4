// Operand fetcher for 2-D convolution (NCHW, groups, strides, pads, dilations) as an implicit
// GEMM per group g (workgroup_id.z), with the batch folded into the rows:
//
//   m = (image, oh, ow)      rows:    M = N * OH * OW
//   k = (ci, kh, kw)         inner:   K = C_in / groups * KH * KW
//   n = output channel       columns: C_out / groups
//
//   A[m, k] = x[image, g * Cin_g + ci, oh * sh - pt + kh * dh, ow * sw - pl + kw * dw]  (0 in the padding)
//   B[k, n] = the weights, laid out by the host as [groups][K][C_out/groups padded to 4]
//   C[m, n] -> y[image, g * Cout_g + n, oh, ow]
//
// A row (image, oh, ow) and a tap (ci, kh, kw) are decoded once each, so the inner loop adds
// two offsets and bounds-checks two coordinates. B's loader is matmul/b_vec4.wgsl.

struct Setup {
  a_base: u32,
  b_base: u32,
  out_base: u32,
  group_channel: u32,
}

struct Row {
  // Element offset of x[image, g * Cin_g, ih0, iw0] (may be negative in the padding).
  base: i32,
  // ih0 = oh * sh - pt, iw0 = ow * sw - pl.
  y: i32,
  x: i32,
  // Element offset of y[image, 0, oh, ow].
  out: u32,
  m: u32,
  valid: bool,
}

struct Tap {
  // ci * H * W + kh * dh * W + kw * dw
  offset: i32,
  dy: i32,
  dx: i32,
  valid: bool,
}

fn gemm_setup(group: u32) -> Setup {
  return Setup(
    group * params.in_channels_per_group * params.in_h * params.in_w,
    group * params.k * params.n4 * 4u,
    0u,
    group * params.out_channels_per_group,
  );
}

fn gemm_row(setup: Setup, m: u32) -> Row {
  let out_hw = params.out_h * params.out_w;
  let image = fast_div(m, out_hw, params.out_hw_inverse);
  let position = m - image * out_hw;
  let oh = fast_div(position, params.out_w, params.out_w_inverse);
  let ow = position - oh * params.out_w;
  let y = i32(oh * params.stride_h) - params.pad_top;
  let x = i32(ow * params.stride_w) - params.pad_left;
  let image_base = image * params.in_channels * params.in_h * params.in_w + setup.a_base;
  return Row(
    i32(image_base) + y * i32(params.in_w) + x, y, x,
    image * params.out_channels * out_hw + position, m, m < params.m,
  );
}

fn gemm_tap(k: u32) -> Tap {
  let kernel_hw = params.kernel_h * params.kernel_w;
  let channel = fast_div(k, kernel_hw, params.kernel_hw_inverse);
  let rest = k - channel * kernel_hw;
  let kh = fast_div(rest, params.kernel_w, params.kernel_w_inverse);
  let kw = rest - kh * params.kernel_w;
  let dy = i32(kh * params.dilation_h);
  let dx = i32(kw * params.dilation_w);
  return Tap(i32(channel * params.in_h * params.in_w) + dy * i32(params.in_w) + dx, dy, dx, k < params.k);
}

fn gemm_a(setup: Setup, row: Row, tap: Tap) -> f32 {
  let y = row.y + tap.dy;
  let x = row.x + tap.dx;
  let inside = row.valid && tap.valid && u32(y) < params.in_h && u32(x) < params.in_w;
  // Read a valid address either way, then drop the value: no branch per element.
  return select(0.0, f32(a[u32(select(0, row.base + tap.offset, inside))]), inside);
}

fn gemm_out_index(setup: Setup, row: Row, n: u32) -> u32 {
  return row.out + (setup.group_channel + n) * params.out_h * params.out_w;
}

fn gemm_bias_index(setup: Setup, row: Row, n: u32) -> u32 {
  return setup.group_channel + n;
}
