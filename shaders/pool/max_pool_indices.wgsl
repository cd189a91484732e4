// MaxPool with its Indices output, over 2-D windows (1-D pools run with height 1), NCHW:
//
//   output[nc, oh, ow]  = max over taps (i, j) inside the input of input[nc, h, w]
//   indices[nc, oh, ow] = the flat index of the first such maximum in scan order (i, then j):
//                         nc * H * W + h * W + w (storage_order 0, row major)
//                         nc * H * W + w * H + h (storage_order 1, column major)
//
// with h = oh * sh - pt + i * dh and w = ow * sw - pl + j * dw. Taps in the padding are skipped,
// so indices never point into it.
//
// Bindings (group 0):
//   @binding(0) input    storage, read   array<T>
//   @binding(1) output   storage, write  array<T>
//   @binding(2) indices  storage, write  array<i32> (INT64 indices, held in i32)
//   @binding(3) params   uniform         Params (pool/pool_params.wgsl)
// Type aliases: T is f32, f16 or i32 (INT8 / UINT8). Override constants: COLUMN_MAJOR
// (storage_order 1), WORKGROUP_SIZE. Preludes: common/index.wgsl (fast_div), pool/pool_params.wgsl (Params).
// Grid: x walks output positions (one per invocation), y and z walk the N * C planes.

override COLUMN_MAJOR: bool = false;
override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read_write> output: array<T>;
@group(0) @binding(2) var<storage, read_write> indices: array<i32>;
@group(0) @binding(3) var<uniform> params: Params;

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
  let plane_size = params.in_h * params.in_w;
  let plane_base = i32(plane) * plane_size;

  var best = -3.402823466e+38;
  var best_index = -1;
  for (var i = 0; i < params.kernel_h; i++) {
    let h = h0 + i * params.dilation_h;
    if (h < 0 || h >= params.in_h) { continue; }
    for (var j = 0; j < params.kernel_w; j++) {
      let w = w0 + j * params.dilation_w;
      if (w < 0 || w >= params.in_w) { continue; }
      let x = f32(input[u32(plane_base + h * params.in_w + w)]);
      // Strictly greater: the first maximum in scan order wins ties.
      if (best_index < 0 || x > best) {
        best = x;
        best_index = plane_base + select(h * params.in_w + w, w * params.in_h + h, COLUMN_MAJOR);
      }
    }
  }
  let at = plane * params.out_h * params.out_w + position;
  output[at] = T(best);
  indices[at] = best_index;
}
