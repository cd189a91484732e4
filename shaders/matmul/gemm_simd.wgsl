enable subgroups;
// GEMM for GPUs that are SIMD units of a CPU (lavapipe, SwiftShader): no workgroup memory, no
// barriers, one 8-lane subgroup per workgroup computing ROWS rows x 32 columns of C.
//
// Why this shape: on such devices every storage-buffer load is done lane by lane (about ten
// scalar instructions per element), while a value that all lanes share costs one broadcast and
// a shuffle (subgroupBroadcast) costs two. So each lane owns 4 consecutive columns (one vec4 of
// B per k, loaded once and used by all ROWS rows), and A is loaded spread over the lanes: for
// each chunk of 8 k, lane j fetches A[row, k0 + j] for every row, and every lane then reads row
// r's value at k0 + j as subgroupBroadcast(a_r, j). Per k that is one vec4 load per lane and
// ROWS / 8 scalar loads for 4 * ROWS fused multiply-adds; the accumulation for a chunk is one
// expression, so the loop writes each accumulator once per 8 k.
//
// Workgroup (8, 1, 1); grid (ceil(N / 32), ceil(M / ROWS), batches or groups).
// Needs subgroups of at least 8 invocations (the 8 lanes of the workgroup must share one).
// Unrolled: ROWS (the //#for blocks). Preludes: common/index.wgsl, common/unary_ops.wgsl,
// matmul/gemm_common.wgsl, an operand fetcher, a B loader.

@compute @workgroup_size(8, 1, 1)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let setup = gemm_setup(workgroup.z);
  let m0 = workgroup.y * ROWS;
  let n4 = workgroup.x * 8u + lane;
  // Lanes past the last column load a valid column and store nothing.
  let n4_load = min(n4, params.n4 - 1u);
  let last_k = params.k - 1u;

  //#for r in ROWS
  let row_{r} = gemm_row(setup, m0 + {r}u);
  var acc_{r} = vec4<f32>();
  //#end

  for (var k0 = 0u; k0 < params.k; k0 += 8u) {
    let tap = gemm_tap(k0 + lane);
    //#for r in ROWS
    let a_{r} = gemm_a(setup, row_{r}, tap);
    //#end
    // Rows past K are clamped to the last row; their A values are 0.
    let b_0 = gemm_b4(setup, k0, n4_load);
    let b_1 = gemm_b4(setup, min(k0 + 1u, last_k), n4_load);
    let b_2 = gemm_b4(setup, min(k0 + 2u, last_k), n4_load);
    let b_3 = gemm_b4(setup, min(k0 + 3u, last_k), n4_load);
    let b_4 = gemm_b4(setup, min(k0 + 4u, last_k), n4_load);
    let b_5 = gemm_b4(setup, min(k0 + 5u, last_k), n4_load);
    let b_6 = gemm_b4(setup, min(k0 + 6u, last_k), n4_load);
    let b_7 = gemm_b4(setup, min(k0 + 7u, last_k), n4_load);
    //#for r in ROWS
    acc_{r} += fma(vec4<f32>(subgroupBroadcast(a_{r}, 7u)), b_7,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 6u)), b_6,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 5u)), b_5,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 4u)), b_4,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 3u)), b_3,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 2u)), b_2,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 1u)), b_1,
      vec4<f32>(subgroupBroadcast(a_{r}, 0u)) * b_0)))))));
    //#end
  }

  // The epilogue (bias, residual, the activation table) is large: it runs in a loop rather than
  // unrolled ROWS times, which would multiply the shader's compile time.
  var results: array<vec4<f32>, ROWS>;
  //#for r in ROWS
  results[{r}] = acc_{r};
  //#end
  for (var r = 0u; r < ROWS; r++) {
    gemm_store4(setup, gemm_row(setup, m0 + r), n4, results[r]);
  }
}
