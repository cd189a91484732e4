// Transposed convolution over up to 3 spatial dims (NC[D]HW, groups, strides, pads, dilations,
// output padding), gathering for each output element every input element that scatters into it:
//
//   y[n, co, o] = act(bias[co] + sum over ci in co's group, k of x[n, ci, i] * w[ci, co % Cout_g, k])
//   where o = i * s - p + k * d per spatial dim (so i = (o + p - k * d) / s when that divides)
//
// Bindings (group 0):
//   @binding(0) x       storage, read   array<T>
//   @binding(1) w       storage, read   array<T>, [C_in, C_out / groups, KD, KH, KW]
//   @binding(2) bias    storage, read   array<T>; any buffer when HAS_BIAS is false
//   @binding(3) output  storage, write  array<T>
//   @binding(4) params  uniform         Params (window/conv_nd_params.wgsl)
// Type aliases: T is f32 or f16. Override constants: HAS_BIAS, WORKGROUP_SIZE.
// Preludes: common/index.wgsl, common/unary_ops.wgsl, window/conv_nd_params.wgsl.

override HAS_BIAS: bool = false;
override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> w: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read_write> output: array<T>;
@group(0) @binding(4) var<uniform> params: Params;

/** The input position along one dim that output position `o` reads through kernel tap `k`, or -1. */
fn source(o: i32, k: i32, axis: u32) -> i32 {
  let shifted = o + params.pad[axis] - k * params.dilation[axis];
  if (shifted < 0 || shifted % params.stride[axis] != 0) { return -1; }
  let i = shifted / params.stride[axis];
  return select(-1, i, i < params.in_shape[axis]);
}

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
  let volumes = fast_div(slices, params.out_shape.x, params.inverse.z);
  let od = i32(slices - volumes * params.out_shape.x);
  let n = fast_div(volumes, params.out_channels, params.inverse.w);
  let co = volumes - n * params.out_channels;
  let group = co / params.out_per_group;
  let in_channels = params.in_per_group * (params.out_channels / params.out_per_group);
  let in_plane = u32(params.in_shape.x * params.in_shape.y * params.in_shape.z);
  let kernel_volume = u32(params.kernel.x * params.kernel.y * params.kernel.z);
  var sum = 0.0;
  for (var c = 0u; c < params.in_per_group; c++) {
    let ci = group * params.in_per_group + c;
    let x_plane = (n * in_channels + ci) * in_plane;
    let w_plane = (ci * params.out_per_group + co % params.out_per_group) * kernel_volume;
    for (var kd = 0; kd < params.kernel.x; kd++) {
      let id = source(od, kd, 0u);
      if (id < 0) { continue; }
      for (var kh = 0; kh < params.kernel.y; kh++) {
        let ih = source(oh, kh, 1u);
        if (ih < 0) { continue; }
        for (var kw = 0; kw < params.kernel.z; kw++) {
          let iw = source(ow, kw, 2u);
          if (iw < 0) { continue; }
          let xv = f32(x[x_plane + u32((id * params.in_shape.y + ih) * params.in_shape.z + iw)]);
          let wv = f32(w[w_plane + u32((kd * params.kernel.y + kh) * params.kernel.z + kw)]);
          sum += xv * wv;
        }
      }
    }
  }
  if (HAS_BIAS) { sum += f32(bias[co]); }
  output[index] = T(unary_op(sum, params.act, params.act_alpha, params.act_beta));
}
