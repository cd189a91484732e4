// Shared by every GEMM-shaped kernel (MatMul, Gemm, Conv as an implicit GEMM): the bindings, the
// parameter block and the fused epilogue.
//
//   C[m, n] = sum_k A[m, k] * B[k, n]
//   output  = act(alpha * C + beta * bias[m * bias_stride_m + n * bias_stride_n] + residual)
//
// Which tensors A and B really are, and where C[m, n] lands, is the operand fetcher's business
// (matmul/fetch_dense.wgsl, conv/fetch_im2col.wgsl); the algorithm (matmul/gemm_simd.wgsl,
// matmul/gemm_tiled.wgsl) only calls gemm_setup / gemm_row / gemm_tap / gemm_a / gemm_b4 /
// gemm_out_index / gemm_bias_index.
//
// Bindings (group 0):
//   @binding(0) a         storage, read   array<T>
//   @binding(1) b         storage, read   array<BT>: vec4<T> rows of n4 vec4s, or T (scalar loader)
//   @binding(2) bias      storage, read   array<T>; any buffer when HAS_BIAS is false
//   @binding(3) residual  storage, read   array<T>, the output's shape; any buffer without HAS_RESIDUAL
//   @binding(4) output    storage, write  array<T>
//   @binding(5) params    uniform         Params below
// Type aliases: T (f32 or f16) and BT.
// Override constants: HAS_BIAS, HAS_RESIDUAL.
// Preludes before this one: common/index.wgsl, common/unary_ops.wgsl.

override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  // B rows are n4 vec4s long (n rounded up to 4 when the host padded B).
  n4: u32,
  alpha: f32,
  beta: f32,
  bias_stride_m: u32,
  bias_stride_n: u32,
  act: u32,
  act_alpha: f32,
  act_beta: f32,
  _pad0: u32,
  // Dense products: output batch dims padded at the front with 1 (workgroup_id.z walks them),
  // and each operand's element stride along them (0 where it broadcasts).
  batch_shape: vec4<u32>,
  a_batch_strides: vec4<u32>,
  b_batch_strides: vec4<u32>,
  // Dense products: element strides of A along m and k and of B along k and n, so an operand
  // may be a strided view (a transposed matrix, heads interleaved in a row) rather than packed.
  a_stride_m: u32,
  a_stride_k: u32,
  b_stride_k: u32,
  b_stride_n: u32,
  // Convolution geometry (NCHW; groups walk workgroup_id.z).
  in_channels: u32,
  in_channels_per_group: u32,
  in_h: u32,
  in_w: u32,
  out_channels: u32,
  out_channels_per_group: u32,
  out_h: u32,
  out_w: u32,
  kernel_h: u32,
  kernel_w: u32,
  stride_h: u32,
  stride_w: u32,
  pad_top: i32,
  pad_left: i32,
  dilation_h: u32,
  dilation_w: u32,
  out_hw_inverse: f32,
  out_w_inverse: f32,
  kernel_hw_inverse: f32,
  kernel_w_inverse: f32,
}

@group(0) @binding(0) var<storage, read> a: array<T>;
@group(0) @binding(1) var<storage, read> b: array<BT>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read> residual: array<T>;
@group(0) @binding(4) var<storage, read_write> output: array<T>;
@group(0) @binding(5) var<uniform> params: Params;

fn epilogue(value: f32, bias_index: u32, out_index: u32) -> f32 {
  var y = params.alpha * value;
  if (HAS_BIAS) { y += params.beta * f32(bias[bias_index]); }
  if (HAS_RESIDUAL) { y += f32(residual[out_index]); }
  return unary_op(y, params.act, params.act_alpha, params.act_beta);
}

// Writes 4 consecutive columns of row `row` (those inside the output).
fn gemm_store4(setup: Setup, row: Row, n4: u32, value: vec4<f32>) {
  if (!row.valid) { return; }
  for (var c = 0u; c < 4u; c++) {
    let n = n4 * 4u + c;
    if (n < params.n) {
      let out_index = gemm_out_index(setup, row, n);
      output[out_index] = T(epilogue(value[c], gemm_bias_index(setup, row, n), out_index));
    }
  }
}
