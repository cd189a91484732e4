// B loader for any strided [K, N] B (b_stride_k, b_stride_n: a transposed or interleaved B as
// well as a packed one): 4 guarded scalar loads, zeros past N. BT is T.

fn gemm_b4(setup: Setup, k: u32, n4: u32) -> vec4<f32> {
  var value = vec4<f32>();
  for (var c = 0u; c < 4u; c++) {
    let n = n4 * 4u + c;
    let index = k * params.b_stride_k + n * params.b_stride_n;
    value[c] = select(0.0, f32(b[setup.b_base + select(0u, index, n < params.n)]), n < params.n);
  }
  return value;
}
