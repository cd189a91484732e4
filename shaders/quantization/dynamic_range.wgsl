// DynamicQuantizeLinear's parameters (UINT8), as onnxruntime computes them:
//   lo = min(min(x), 0), hi = max(max(x), 0)
//   scale = hi == lo ? 1 : (hi - lo) / 255
//   zero_point = round_half_even(clamp(0 - lo / scale, 0, 255))
// One workgroup strides over the input, then reduces in workgroup memory.
//
// Bindings (group 0):
//   @binding(0) input        storage, read   array<T>
//   @binding(1) scale_word   storage, write  array<f32>  (the scale for the quantize pass)
//   @binding(2) zero_word    storage, write  array<i32>  (the zero point for the quantize pass)
//   @binding(3) y_scale      storage, write  array<U>    (output 1)
//   @binding(4) y_zero_point storage, write  array<i32>  (output 2)
//   @binding(5) params       uniform         Params below
// Type aliases: T and U are f32 or f16. Override constants: WORKGROUP_SIZE (a power of two).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read_write> scale_word: array<f32>;
@group(0) @binding(2) var<storage, read_write> zero_word: array<i32>;
@group(0) @binding(3) var<storage, read_write> y_scale: array<U>;
@group(0) @binding(4) var<storage, read_write> y_zero_point: array<i32>;
@group(0) @binding(5) var<uniform> params: Params;

var<workgroup> lows: array<f32, WORKGROUP_SIZE>;
var<workgroup> highs: array<f32, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(local_invocation_index) local_index: u32) {
  // Starting from 0 includes zero in the range, as the operator requires.
  var low = 0.0;
  var high = 0.0;
  for (var index = local_index; index < params.count; index += WORKGROUP_SIZE) {
    let value = f32(input[index]);
    low = min(low, value);
    high = max(high, value);
  }
  lows[local_index] = low;
  highs[local_index] = high;
  workgroupBarrier();
  for (var half = WORKGROUP_SIZE / 2u; half > 0u; half /= 2u) {
    if (local_index < half) {
      lows[local_index] = min(lows[local_index], lows[local_index + half]);
      highs[local_index] = max(highs[local_index], highs[local_index + half]);
    }
    workgroupBarrier();
  }
  if (local_index == 0u) {
    let range_low = lows[0];
    let range_high = highs[0];
    let scale = select((range_high - range_low) / 255.0, 1.0, range_high == range_low);
    let zero = i32(round(clamp(0.0 - range_low / scale, 0.0, 255.0)));
    scale_word[0] = scale;
    zero_word[0] = zero;
    y_scale[0] = U(scale);
    y_zero_point[0] = zero;
  }
}
