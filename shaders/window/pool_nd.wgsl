// Pooling over up to 3 spatial dims, one invocation per output element; fewer spatial dims run
// with leading dims of size 1. MODE 0: max; 1: average (count_include_pad counts the window's
// positions inside the padded extent, else only those inside the input); 2: Lp, the p-norm of the
// window's elements (padding counts as zeros):
//
//   y[plane, o] = reduce over k of x[plane, o * s - pad_begin + k * d]
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) output  storage, write  array<T>
//   @binding(2) params  uniform         Params below
// Type aliases: T is f32 or f16 (i32 for MaxPool on INT8 / UINT8, exact in f32). Override constants: MODE, WORKGROUP_SIZE.
// Preludes: common/index.wgsl (fast_div).

override MODE: u32 = 0u;
override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  count: u32,
  count_include_pad: u32,
  p: f32,
  _pad: u32,
  in_shape: vec4<i32>,
  out_shape: vec4<u32>,
  // 1 / out width, 1 / out height, 1 / out depth.
  inverse: vec4<f32>,
  kernel: vec4<i32>,
  stride: vec4<i32>,
  pad_begin: vec4<i32>,
  // The end of the padded extent per dim: in + pad_end.
  padded_end: vec4<i32>,
  dilation: vec4<i32>,
}

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read_write> output: array<T>;
@group(0) @binding(2) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }
  let rows = fast_div(index, params.out_shape.z, params.inverse.x);
  let ow = i32(index - rows * params.out_shape.z);
  let slices = fast_div(rows, params.out_shape.y, params.inverse.y);
  let oh = i32(rows - slices * params.out_shape.y);
  let plane = fast_div(slices, params.out_shape.x, params.inverse.z);
  let od = i32(slices - plane * params.out_shape.x);
  let base = plane * u32(params.in_shape.x * params.in_shape.y * params.in_shape.z);
  var best = -3.4028234663852886e38;
  var sum = 0.0;
  var counted = 0;
  for (var kd = 0; kd < params.kernel.x; kd++) {
    let id = od * params.stride.x - params.pad_begin.x + kd * params.dilation.x;
    for (var kh = 0; kh < params.kernel.y; kh++) {
      let ih = oh * params.stride.y - params.pad_begin.y + kh * params.dilation.y;
      for (var kw = 0; kw < params.kernel.z; kw++) {
        let iw = ow * params.stride.z - params.pad_begin.z + kw * params.dilation.z;
        let inside = id >= 0 && id < params.in_shape.x && ih >= 0 && ih < params.in_shape.y && iw >= 0 && iw < params.in_shape.z;
        let in_padded = id < params.padded_end.x && ih < params.padded_end.y && iw < params.padded_end.z;
        if (inside) {
          let value = f32(input[base + u32((id * params.in_shape.y + ih) * params.in_shape.z + iw)]);
          best = max(best, value);
          sum += select(value, pow(abs(value), params.p), MODE == 2u);
          counted++;
        } else if (params.count_include_pad == 1u && in_padded) {
          counted++;
        }
      }
    }
  }
  var result = best;
  if (MODE == 1u) { result = select(0.0, sum / f32(counted), counted > 0); }
  if (MODE == 2u) { result = pow(sum, 1.0 / params.p); }
  output[index] = T(result);
}
