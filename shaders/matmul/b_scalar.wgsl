// B loader for any [K, N] B (or [N, K] with TRANS_B): 4 guarded scalar loads, zeros past N.
// BT is T.

override TRANS_B: bool = false;

fn gemm_b4(setup: Setup, k: u32, n4: u32) -> vec4<f32> {
  var value = vec4<f32>();
  for (var c = 0u; c < 4u; c++) {
    let n = n4 * 4u + c;
    let index = select(k * params.n + n, n * params.k + k, TRANS_B);
    value[c] = select(0.0, f32(b[setup.b_base + select(0u, index, n < params.n)]), n < params.n);
  }
  return value;
}
