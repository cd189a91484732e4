// Index arithmetic shared by kernels that unravel flat indices.
//
// fast_div(x, d, inv_d) = floor(x / d) for x < 2^25 (every index of a tensor that fits in a
// storage binding), with inv_d = 1 / d as f32 from the host. It takes an f32 estimate and
// corrects it twice each way. Software GPUs (lavapipe) run u32 division one lane at a time
// (eight scalar `div` instructions per SIMD op); this is a handful of vector instructions.

fn fast_div(x: u32, d: u32, inv_d: f32) -> u32 {
  var q = u32(i32(f32(x) * inv_d));
  var r = i32(x) - i32(q * d);
  let di = i32(d);
  q = select(q, q - 1u, r < 0);
  r = select(r, r + di, r < 0);
  q = select(q, q - 1u, r < 0);
  r = select(r, r + di, r < 0);
  q = select(q, q + 1u, r >= di);
  r = select(r, r - di, r >= di);
  q = select(q, q + 1u, r >= di);
  return q;
}
