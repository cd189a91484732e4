// The uniform block QuantizeLinear and DequantizeLinear share (quantize.wgsl, dequantize.wgsl;
// kernels/quantization.ts writes it) and where element `index` finds its scale and zero point.

struct Params {
  count: u32,
  inner: u32,
  axis_length: u32,
  block: u32,
  blocks: u32,
  // 0: per tensor, 1: per axis index, 2: blocked along the axis.
  mode: u32,
  low: i32,
  high: i32,
}

fn scale_index(index: u32) -> u32 {
  if (params.mode == 0u) { return 0u; }
  let along = (index / params.inner) % params.axis_length;
  if (params.mode == 1u) { return along; }
  let outer = index / (params.inner * params.axis_length);
  return (outer * params.blocks + along / params.block) * params.inner + index % params.inner;
}
