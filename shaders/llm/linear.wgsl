// A decoder projection, out[r, :] = epilogue(x[r, :] W) (llm/linear_epilogue.wgsl), for GPUs:
// each invocation owns 4 adjacent columns (one vec4 of W per k, coalesced across the
// workgroup) of ROWS rows; x values are the same for the whole workgroup, served by the cache.
// Decoding runs ROWS = 1 or 4, so it is a batched GEMV, never a padded GEMM; prefill ROWS = 8.
// Every row's sum runs in the same order whatever ROWS is.
//
// Workgroup (64, 1, 1); grid (ceil(n4 / 64), ceil(rows / ROWS), 1). Unrolled: ROWS.
// Preludes: llm/step.wgsl, llm/linear_epilogue.wgsl.

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>, @builtin(workgroup_id) workgroup: vec3<u32>) {
  let rows = row_count();
  let m0 = workgroup.y * ROWS;
  let c = id.x;
  if (m0 >= rows || c >= params.n4) { return; }

  //#for r in ROWS
  let x_{r} = min(m0 + {r}u, rows - 1u) * params.x_stride;
  var acc_{r} = vec4<f32>();
  var up_{r} = vec4<f32>();
  //#end

  for (var k = 0u; k < params.k; k++) {
    let w_k = vec4<f32>(w[k * params.w_stride4 + c]);
    //#for r in ROWS
    acc_{r} = fma(vec4<f32>(x[x_{r} + k]), w_k, acc_{r});
    //#end
    if (ACT == 2u) {
      let u_k = vec4<f32>(w[k * params.w_stride4 + params.n4 + c]);
      //#for r in ROWS
      up_{r} = fma(vec4<f32>(x[x_{r} + k]), u_k, up_{r});
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
