// MaxPool and AveragePool over 2-D windows (1-D pools run with height 1), NCHW:
//
//   output[nc, oh, ow] = POOL over taps (i, j) of input[nc, oh * sh - pt + i * dh, ow * sw - pl + j * dw]
//
// Taps outside the input are skipped. AveragePool divides by the taps inside the input, or with
// count_include_pad by the taps inside the padded input (so windows that ceil_mode lets run past
// the padding are clipped, as onnxruntime does).
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) output  storage, write  array<T>
//   @binding(2) params  uniform         Params (pool/pool_params.wgsl)
// Type aliases: T is f32, f16, or i32 for MaxPool on INT8 / UINT8 (exact in the f32 maximum).
// Override constants: IS_MAX (MaxPool, else AveragePool); WORKGROUP_SIZE.
// Preludes: common/index.wgsl (fast_div), pool/pool_params.wgsl (Params).
// Grid: x walks output positions (one per invocation), y and z walk the N * C planes.

override IS_MAX: bool = true;
override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read_write> output: array<T>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let plane = workgroup.z * workgroups.y + workgroup.y;
  let position = workgroup.x * WORKGROUP_SIZE + local_index;
  if (plane >= params.planes || position >= params.out_h * params.out_w) { return; }
  let oh = fast_div(position, params.out_w, params.out_w_inverse);
  let ow = position - oh * params.out_w;
  let h0 = i32(oh) * params.stride_h - params.pad_top;
  let w0 = i32(ow) * params.stride_w - params.pad_left;
  let plane_base = plane * u32(params.in_h * params.in_w);

  var acc = select(0.0, -3.402823466e+38, IS_MAX);
  var inside = 0;
  var inside_padded = 0;
  for (var i = 0; i < params.kernel_h; i++) {
    let h = h0 + i * params.dilation_h;
    let h_in = h >= 0 && h < params.in_h;
    let h_padded = h < params.padded_end_h;
    for (var j = 0; j < params.kernel_w; j++) {
      let w = w0 + j * params.dilation_w;
      if (h_padded && w < params.padded_end_w) { inside_padded++; }
      if (h_in && w >= 0 && w < params.in_w) {
        let x = f32(input[plane_base + u32(h * params.in_w + w)]);
        acc = select(acc + x, max(acc, x), IS_MAX);
        inside++;
      }
    }
  }
  if (!IS_MAX) {
    acc = acc / f32(max(select(inside, inside_padded, params.count_include_pad == 1u), 1));
  }
  output[plane * params.out_h * params.out_w + position] = T(acc);
}
