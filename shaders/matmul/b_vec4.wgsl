// B loader for row-major [K, N] B with N a multiple of 4 (or padded to one by the host):
// 4 consecutive columns of row k in one vec4 load. BT is vec4<T>.

fn gemm_b4(setup: Setup, k: u32, n4: u32) -> vec4<f32> {
  return vec4<f32>(b[setup.b_base / 4u + k * params.n4 + n4]);
}
