// Operand fetcher for dense products (MatMul, Gemm): A and B are strided matrices, batched
// over up to 4 broadcast batch dims (workgroup_id.z walks the output batch).
//
//   A[m, k] = a[a_batch + m * a_stride_m + k * a_stride_k]   (packed row-major: K and 1)
//   C[m, n] -> output[z * M * N + m * N + n]
//
// B's loader is matmul/b_vec4.wgsl (packed rows) or matmul/b_scalar.wgsl (any strides).

struct Setup {
  a_base: u32,
  b_base: u32,
  out_base: u32,
  group_channel: u32,
}

struct Row {
  base: i32,
  y: i32,
  x: i32,
  out: u32,
  m: u32,
  valid: bool,
}

struct Tap {
  offset: i32,
  dy: i32,
  dx: i32,
  valid: bool,
}

fn gemm_setup(z: u32) -> Setup {
  // Unravel z over the output batch dims; a broadcast dim has stride 0.
  var rest = z;
  var a_base = 0u;
  var b_base = 0u;
  for (var dim = 3; dim >= 0; dim--) {
    let coord = rest % params.batch_shape[dim];
    rest = rest / params.batch_shape[dim];
    a_base += coord * params.a_batch_strides[dim];
    b_base += coord * params.b_batch_strides[dim];
  }
  return Setup(a_base, b_base, z * params.m * params.n, 0u);
}

fn gemm_row(setup: Setup, m: u32) -> Row {
  let base = setup.a_base + m * params.a_stride_m;
  return Row(i32(base), 0, 0, setup.out_base + m * params.n, m, m < params.m);
}

fn gemm_tap(k: u32) -> Tap {
  return Tap(i32(k * params.a_stride_k), 0, 0, k < params.k);
}

fn gemm_a(setup: Setup, row: Row, tap: Tap) -> f32 {
  let inside = row.valid && tap.valid;
  // Read a valid address either way, then drop the value: no branch per element.
  return select(0.0, f32(a[u32(select(0, row.base + tap.offset, inside))]), inside);
}

fn gemm_out_index(setup: Setup, row: Row, n: u32) -> u32 {
  return row.out + n;
}

fn gemm_bias_index(setup: Setup, row: Row, n: u32) -> u32 {
  return row.m * params.bias_stride_m + n * params.bias_stride_n;
}
