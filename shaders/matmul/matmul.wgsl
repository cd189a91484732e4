// Tiled matrix product, serving ONNX MatMul (batched, numpy-broadcast batch dims) and Gemm.
//
//   output[batch, m, n] = alpha * sum_k A[batch, m, k] * B[batch, k, n]  +  beta * bias[m, n]
//
// Bindings (group 0):
//   @binding(0) a       storage, read   A, row-major [..., M, K] (or [K, M] when TRANS_A)
//   @binding(1) b       storage, read   B, row-major [..., K, N] (or [N, K] when TRANS_B)
//   @binding(2) bias    storage, read   Gemm's C; any 16-byte buffer when HAS_BIAS is false
//   @binding(3) output  storage, write  row-major [batch, M, N]
//   @binding(4) params  uniform         Params below
// Override constants (they change the code, so they are part of the pipeline cache key):
//   TRANS_A, TRANS_B  read A / B transposed (Gemm transA / transB)
//   HAS_BIAS          add beta * bias
//   WG_X, WG_Y        workgroup shape; the output tile is (4 * WG_Y) rows x (4 * WG_X) columns
//
// Tiling: each invocation owns a 4x4 register block of the output tile (16x16 invocations make
// a 64x64 tile; a 64x1 workgroup makes a 4x256 tile for skinny products such as batch-1 layers).
// K is walked 16 at a time: the workgroup stages A's tile rows and B's tile columns for those 16
// k as vec4s (4 rows of A / 4 columns of B at one k) in workgroup memory, then every invocation
// does 16 rank-1 updates of its 4x4 block from there. Loads outside the matrices read 0, so odd
// sizes need no special case.

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;

const TILE_K: u32 = 16u;
// An A tile holds WG_Y vec4 groups of 4 rows, a B tile WG_X groups of 4 columns.
override TILE_M: u32 = 4u * WG_Y;
override TILE_N: u32 = 4u * WG_X;
override INVOCATIONS: u32 = WG_X * WG_Y;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  _pad0: u32,
  alpha: f32,
  beta: f32,
  // Element strides of bias along m and n; 0 where bias is broadcast (shape [N], [1, N], scalar...).
  bias_stride_m: u32,
  bias_stride_n: u32,
  // Output batch dims, padded at the front with 1 (workgroup_id.z walks their product).
  batch_shape: vec4<u32>,
  // Element strides of A's / B's batch dims along batch_shape; 0 where that operand is broadcast.
  a_batch_strides: vec4<u32>,
  b_batch_strides: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> output: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;

// tile_a[k * WG_Y + g] holds A[row0 + 4g .. row0 + 4g + 3, k0 + k]: one vec4 per 4 rows.
var<workgroup> tile_a: array<vec4<f32>, TILE_K * WG_Y>;
// tile_b[k * WG_X + g] holds B[k0 + k, col0 + 4g .. col0 + 4g + 3]: one vec4 per 4 columns.
var<workgroup> tile_b: array<vec4<f32>, TILE_K * WG_X>;

// A[row, col] of the logical M x K matrix, 0 outside it.
fn load_a(base: u32, row: u32, col: u32) -> f32 {
  if (row >= params.m || col >= params.k) { return 0.0; }
  if (TRANS_A) { return a[base + col * params.m + row]; }
  return a[base + row * params.k + col];
}

// B[row, col] of the logical K x N matrix, 0 outside it.
fn load_b(base: u32, row: u32, col: u32) -> f32 {
  if (row >= params.k || col >= params.n) { return 0.0; }
  if (TRANS_B) { return b[base + col * params.k + row]; }
  return b[base + row * params.n + col];
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  // Batch offsets: unravel workgroup.z over the output batch dims; a broadcast dim has stride 0.
  var rest = workgroup.z;
  var a_base = 0u;
  var b_base = 0u;
  for (var dim = 3; dim >= 0; dim--) {
    let coord = rest % params.batch_shape[dim];
    rest = rest / params.batch_shape[dim];
    a_base += coord * params.a_batch_strides[dim];
    b_base += coord * params.b_batch_strides[dim];
  }
  let out_base = workgroup.z * params.m * params.n;
  let row0 = workgroup.y * TILE_M;
  let col0 = workgroup.x * TILE_N;

  // acc[i][j] = output[row0 + 4 * local.y + i, col0 + 4 * local.x + j] before alpha and bias.
  var acc: array<vec4<f32>, 4>;
  let k_tiles = (params.k + TILE_K - 1u) / TILE_K;
  for (var tile = 0u; tile < k_tiles; tile++) {
    let k0 = tile * TILE_K;
    // Stage the tiles, one vec4 per slot. Neighbouring invocations should read neighbouring
    // addresses, so a slot's fast index follows whichever of (row, k) is contiguous in memory.
    for (var slot = local_index; slot < TILE_K * WG_Y; slot += INVOCATIONS) {
      var k = slot % TILE_K;
      var group = slot / TILE_K;
      if (TRANS_A) { group = slot % WG_Y; k = slot / WG_Y; }
      let row = row0 + group * 4u;
      tile_a[k * WG_Y + group] = vec4<f32>(
        load_a(a_base, row, k0 + k), load_a(a_base, row + 1u, k0 + k),
        load_a(a_base, row + 2u, k0 + k), load_a(a_base, row + 3u, k0 + k));
    }
    for (var slot = local_index; slot < TILE_K * WG_X; slot += INVOCATIONS) {
      var group = slot % WG_X;
      var k = slot / WG_X;
      if (TRANS_B) { k = slot % TILE_K; group = slot / TILE_K; }
      let col = col0 + group * 4u;
      tile_b[k * WG_X + group] = vec4<f32>(
        load_b(b_base, k0 + k, col), load_b(b_base, k0 + k, col + 1u),
        load_b(b_base, k0 + k, col + 2u), load_b(b_base, k0 + k, col + 3u));
    }
    workgroupBarrier();

    // Rank-1 updates: acc += A[4 rows, k] (outer product) B[k, 4 columns].
    for (var k = 0u; k < TILE_K; k++) {
      let a4 = tile_a[k * WG_Y + local.y];
      let b4 = tile_b[k * WG_X + local.x];
      acc[0] = fma(vec4<f32>(a4.x), b4, acc[0]);
      acc[1] = fma(vec4<f32>(a4.y), b4, acc[1]);
      acc[2] = fma(vec4<f32>(a4.z), b4, acc[2]);
      acc[3] = fma(vec4<f32>(a4.w), b4, acc[3]);
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < 4u; i++) {
    let row = row0 + local.y * 4u + i;
    if (row >= params.m) { break; }
    for (var j = 0u; j < 4u; j++) {
      let col = col0 + local.x * 4u + j;
      if (col >= params.n) { break; }
      var value = params.alpha * acc[i][j];
      if (HAS_BIAS) {
        value += params.beta * bias[row * params.bias_stride_m + col * params.bias_stride_n];
      }
      output[out_base + row * params.n + col] = value;
    }
  }
}
