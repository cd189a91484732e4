// Tiled GEMM for GPUs: each invocation owns a 4x4 register block of a (4 * WG_Y) x (4 * WG_X)
// output tile (16x16 invocations make a 64x64 tile; a 64x1 workgroup makes a 4x256 tile for
// products with few rows, where a 64-row tile would compute mostly padding).
//
// K is walked 16 at a time: the workgroup stages the A tile's rows and the B tile's columns for
// those 16 k as vec4s (4 rows of A / 4 columns of B at one k) in workgroup memory, then every
// invocation does 16 rank-1 updates of its 4x4 block from there. Fetches outside the matrices
// read 0, so odd sizes need no special case.
//
// Workgroup (WG_X, WG_Y, 1); grid (ceil(N / (4 WG_X)), ceil(M / (4 WG_Y)), batches or groups).
// Override constants: WG_X, WG_Y. Preludes: common/index.wgsl, common/unary_ops.wgsl,
// matmul/gemm_common.wgsl, an operand fetcher, a B loader.

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;

const TILE_K: u32 = 16u;
override TILE_M: u32 = 4u * WG_Y;
override TILE_N: u32 = 4u * WG_X;
override INVOCATIONS: u32 = WG_X * WG_Y;

// tile_a[k * WG_Y + g] holds A[row0 + 4g .. row0 + 4g + 3, k0 + k]: one vec4 per 4 rows.
var<workgroup> tile_a: array<vec4<f32>, TILE_K * WG_Y>;
// tile_b[k * WG_X + g] holds B[k0 + k, col0 + 4g .. col0 + 4g + 3]: one vec4 per 4 columns.
var<workgroup> tile_b: array<vec4<f32>, TILE_K * WG_X>;

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let setup = gemm_setup(workgroup.z);
  let row0 = workgroup.y * TILE_M;
  let col4_0 = workgroup.x * WG_X;
  let last_k = params.k - 1u;

  var acc: array<vec4<f32>, 4>;
  let k_tiles = (params.k + TILE_K - 1u) / TILE_K;
  for (var tile = 0u; tile < k_tiles; tile++) {
    let k0 = tile * TILE_K;
    for (var slot = local_index; slot < TILE_K * WG_Y; slot += INVOCATIONS) {
      let k = slot % TILE_K;
      let group = slot / TILE_K;
      let tap = gemm_tap(k0 + k);
      let row = row0 + group * 4u;
      tile_a[k * WG_Y + group] = vec4<f32>(
        gemm_a(setup, gemm_row(setup, row), tap), gemm_a(setup, gemm_row(setup, row + 1u), tap),
        gemm_a(setup, gemm_row(setup, row + 2u), tap), gemm_a(setup, gemm_row(setup, row + 3u), tap));
    }
    for (var slot = local_index; slot < TILE_K * WG_X; slot += INVOCATIONS) {
      let group = slot % WG_X;
      let k = slot / WG_X;
      // Columns past N and rows past K: the A tile holds zeros there, B any finite value.
      tile_b[k * WG_X + group] = gemm_b4(setup, min(k0 + k, last_k), min(col4_0 + group, params.n4 - 1u));
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
    gemm_store4(setup, gemm_row(setup, row0 + local.y * 4u + i), col4_0 + local.x, acc[i]);
  }
}
