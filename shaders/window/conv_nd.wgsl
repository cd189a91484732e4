// Direct convolution over up to 3 spatial dims (NC[D]HW, groups, strides, pads, dilations), one
// invocation per output element; fewer spatial dims run with leading dims of size 1:
//
//   y[n, co, od, oh, ow] = act(bias[co] + residual[...] + sum over ci in co's group, kd, kh, kw of
//                            x[n, ci, od*sd - pd + kd*dd, oh*sh - ph + kh*dh, ow*sw - pw + kw*dw] * w[co, ci % Cin_g, kd, kh, kw])
//
// Bindings (group 0):
//   @binding(0) x         storage, read   array<T>
//   @binding(1) w         storage, read   array<T>, [C_out, C_in / groups, KD, KH, KW]
//   @binding(2) bias      storage, read   array<T>; any buffer when HAS_BIAS is false
//   @binding(3) residual  storage, read   array<T> of the output's shape; any buffer when HAS_RESIDUAL is false
//   @binding(4) output    storage, write  array<T>
//   @binding(5) params    uniform         Params (window/conv_nd_params.wgsl)
// Type aliases: T is f32 or f16. Override constants: HAS_BIAS, HAS_RESIDUAL, WORKGROUP_SIZE.
// Preludes: common/index.wgsl, common/unary_ops.wgsl, window/conv_nd_params.wgsl.

override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;
override WORKGROUP_SIZE: u32 = 64u;

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> w: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read> residual: array<T>;
@group(0) @binding(4) var<storage, read_write> output: array<T>;
@group(0) @binding(5) var<uniform> params: Params;

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
  let in_plane = params.in_shape.x * params.in_shape.y * params.in_shape.z;
  let kernel_volume = params.kernel.x * params.kernel.y * params.kernel.z;
  var sum = 0.0;
  for (var c = 0u; c < params.in_per_group; c++) {
    let ci = group * params.in_per_group + c;
    let x_plane = (n * params.in_per_group * (params.out_channels / params.out_per_group) + ci) * u32(in_plane);
    let w_plane = (co * params.in_per_group + c) * u32(kernel_volume);
    for (var kd = 0; kd < params.kernel.x; kd++) {
      let id = od * params.stride.x - params.pad.x + kd * params.dilation.x;
      if (id < 0 || id >= params.in_shape.x) { continue; }
      for (var kh = 0; kh < params.kernel.y; kh++) {
        let ih = oh * params.stride.y - params.pad.y + kh * params.dilation.y;
        if (ih < 0 || ih >= params.in_shape.y) { continue; }
        for (var kw = 0; kw < params.kernel.z; kw++) {
          let iw = ow * params.stride.z - params.pad.z + kw * params.dilation.z;
          if (iw < 0 || iw >= params.in_shape.z) { continue; }
          let xv = f32(x[x_plane + u32((id * params.in_shape.y + ih) * params.in_shape.z + iw)]);
          let wv = f32(w[w_plane + u32((kd * params.kernel.y + kh) * params.kernel.z + kw)]);
          sum += xv * wv;
        }
      }
    }
  }
  if (HAS_BIAS) { sum += f32(bias[co]); }
  if (HAS_RESIDUAL) { sum += f32(residual[index]); }
  output[index] = T(unary_op(sum, params.act, params.act_alpha, params.act_beta));
}
