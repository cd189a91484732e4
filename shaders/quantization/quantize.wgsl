// QuantizeLinear: y = clamp(round_half_even(x / scale) + zero_point, low, high), as i32.
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) scales  storage, read   array<f32>  (one, one per axis index, or one per block)
//   @binding(2) zeros   storage, read   array<i32>  (same layout as scales)
//   @binding(3) output  storage, write  array<i32>
//   @binding(4) params  uniform         Params (quantization/quantization_params.wgsl)
// Type aliases: T is f32 or f16. Override constants: WORKGROUP_SIZE. The grid may be 2-D.

override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read> scales: array<f32>;
@group(0) @binding(2) var<storage, read> zeros: array<i32>;
@group(0) @binding(3) var<storage, read_write> output: array<i32>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }
  let at = scale_index(index);
  // WGSL's round() rounds halves to even, as ONNX specifies; clamping in f32 saturates before
  // the conversion, which would otherwise be undefined beyond the i32 range.
  let quantized = round(f32(input[index]) / scales[at]) + f32(zeros[at]);
  output[index] = i32(clamp(quantized, f32(params.low), f32(params.high)));
}
