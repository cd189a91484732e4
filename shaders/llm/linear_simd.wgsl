enable subgroups;
// A decoder projection, out[r, :] = epilogue(x[r, :] W) (llm/linear_epilogue.wgsl), for GPUs that
// are a CPU's SIMD units (lavapipe): the shape of matmul/gemm_simd.wgsl. One 8-lane subgroup
// per workgroup computes ROWS rows x 32 columns; each lane owns 4 adjacent columns (one vec4 of
// W per k, loaded once for all ROWS rows), and x is loaded spread over the lanes, 8 k at a time,
// each lane then reading row r's value at k0 + j with subgroupBroadcast(a_r, j).
//
// One kernel for decode and prefill: a step with one row runs ROWS = 1, a few rows ROWS = 4,
// more ROWS = 8, so decoding never computes padded rows. Every row's sum runs in the same
// order whatever ROWS is, so a sequence's results do not depend on what it is batched with.
//
// Workgroup (8, 1, 1); grid (ceil(n4 / 8), ceil(rows / ROWS), 1). Unrolled: ROWS, LANES (8).
// Preludes: llm/step.wgsl, llm/linear_epilogue.wgsl.

@compute @workgroup_size(8, 1, 1)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(local_invocation_index) lane: u32,
) {
  let rows = row_count();
  let m0 = workgroup.y * ROWS;
  if (m0 >= rows) { return; }
  let c = workgroup.x * 8u + lane;
  // Lanes past the last column group load a valid one and store nothing.
  let c_load = min(c, params.n4 - 1u);
  let last_k = params.k - 1u;

  //#for r in ROWS
  let x_{r} = min(m0 + {r}u, rows - 1u) * params.x_stride;
  var acc_{r} = vec4<f32>();
  var up_{r} = vec4<f32>();
  //#end

  for (var k0 = 0u; k0 < params.k; k0 += 8u) {
    let k = k0 + lane;
    let k_load = min(k, last_k);
    //#for r in ROWS
    let a_{r} = select(0.0, x[x_{r} + k_load], k < params.k);
    //#end
    // Rows past K are clamped to the last one; their x values are 0.
    //#for j in LANES
    let w_{j} = vec4<f32>(w[min(k0 + {j}u, last_k) * params.w_stride4 + c_load]);
    //#end
    //#for r in ROWS
    acc_{r} += fma(vec4<f32>(subgroupBroadcast(a_{r}, 7u)), w_7,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 6u)), w_6,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 5u)), w_5,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 4u)), w_4,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 3u)), w_3,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 2u)), w_2,
      fma(vec4<f32>(subgroupBroadcast(a_{r}, 1u)), w_1,
      vec4<f32>(subgroupBroadcast(a_{r}, 0u)) * w_0)))))));
    //#end
    if (ACT == 2u) {
      // SwiGLU: the up half of the same rows sits n4 vec4s to the right of the gate half.
      //#for j in LANES
      let u_{j} = vec4<f32>(w[min(k0 + {j}u, last_k) * params.w_stride4 + params.n4 + c_load]);
      //#end
      //#for r in ROWS
      up_{r} += fma(vec4<f32>(subgroupBroadcast(a_{r}, 7u)), u_7,
        fma(vec4<f32>(subgroupBroadcast(a_{r}, 6u)), u_6,
        fma(vec4<f32>(subgroupBroadcast(a_{r}, 5u)), u_5,
        fma(vec4<f32>(subgroupBroadcast(a_{r}, 4u)), u_4,
        fma(vec4<f32>(subgroupBroadcast(a_{r}, 3u)), u_3,
        fma(vec4<f32>(subgroupBroadcast(a_{r}, 2u)), u_2,
        fma(vec4<f32>(subgroupBroadcast(a_{r}, 1u)), u_1,
        vec4<f32>(subgroupBroadcast(a_{r}, 0u)) * u_0)))))));
      //#end
    }
  }

  // The epilogue runs in a loop rather than unrolled ROWS times, which would multiply the
  // shader's compile time. With SwiGLU acc_ is the gate half's sum and up_ the up half's.
  var values: array<vec4<f32>, ROWS>;
  var gates: array<vec4<f32>, ROWS>;
  //#for r in ROWS
  values[{r}] = select(acc_{r}, up_{r}, ACT == 2u);
  gates[{r}] = acc_{r};
  //#end
  for (var r = 0u; r < ROWS; r++) {
    store4(m0 + r, c, values[r], gates[r]);
  }
}
