// RoiAlign as onnxruntime computes it: output [r, c, ph, pw] pools bin (ph, pw) of region r
// (x1, y1, x2, y2 in rois[r], scaled by spatial_scale and shifted by -0.5 with half_pixel) of
// x[batch_indices[r], c], sampling grid_h x grid_w points per bin (sampling_ratio, or
// ceil(bin size) when it is 0), each bilinearly interpolated:
//
//   avg: the mean of the samples
//   max: the largest of every sample's four weighted corner values (onnxruntime's definition)
//
// A sample beyond one pixel outside the image counts as 0; one at the edge clamps to it.
// Without half_pixel (output_half_pixel, opset 10) a region is at least 1 x 1.
//
// Bindings (group 0):
//   @binding(0) x              storage, read   array<T>, [N, C, H, W]
//   @binding(1) rois           storage, read   array<T>, [R, 4]
//   @binding(2) batch_indices  storage, read   array<i32>, [R] (clamped to [0, N - 1])
//   @binding(3) output         storage, write  array<T>, [R, C, out_h, out_w]
//   @binding(4) params         uniform         Params below
// Type aliases: T is f32 or f16 (arithmetic in f32). Override constants: MAX (0 avg, 1 max),
// WORKGROUP_SIZE.
// Grid: x walks the bins of a plane, y and z the R * C planes.

override MAX: u32 = 0u;
override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  planes: u32,
  channels: u32,
  batch: u32,
  height: u32,
  width: u32,
  out_h: u32,
  out_w: u32,
  sampling_ratio: u32,
  half_pixel: u32,
  spatial_scale: f32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> rois: array<T>;
@group(0) @binding(2) var<storage, read> batch_indices: array<i32>;
@group(0) @binding(3) var<storage, read_write> output: array<T>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let plane = workgroup.z * workgroups.y + workgroup.y;
  let bin = workgroup.x * WORKGROUP_SIZE + local_index;
  if (plane >= params.planes || bin >= params.out_h * params.out_w) { return; }
  let roi = plane / params.channels;
  let channel = plane % params.channels;
  let ph = bin / params.out_w;
  let pw = bin % params.out_w;
  let n = u32(clamp(batch_indices[roi], 0, i32(params.batch) - 1));
  let offset = select(0.0, 0.5, params.half_pixel == 1u);
  let start_w = f32(rois[roi * 4u]) * params.spatial_scale - offset;
  let start_h = f32(rois[roi * 4u + 1u]) * params.spatial_scale - offset;
  var roi_w = f32(rois[roi * 4u + 2u]) * params.spatial_scale - offset - start_w;
  var roi_h = f32(rois[roi * 4u + 3u]) * params.spatial_scale - offset - start_h;
  if (params.half_pixel == 0u) {
    roi_w = max(roi_w, 1.0);
    roi_h = max(roi_h, 1.0);
  }
  let bin_h = roi_h / f32(params.out_h);
  let bin_w = roi_w / f32(params.out_w);
  var grid_h = params.sampling_ratio;
  var grid_w = params.sampling_ratio;
  if (params.sampling_ratio == 0u) {
    grid_h = u32(max(ceil(roi_h / f32(params.out_h)), 0.0));
    grid_w = u32(max(ceil(roi_w / f32(params.out_w)), 0.0));
  }
  let count = f32(max(grid_h * grid_w, 1u));
  let height = f32(params.height);
  let width = f32(params.width);
  let base = (n * params.channels + channel) * params.height * params.width;
  var sum = 0.0;
  var largest = 0.0;
  var first = true;
  for (var iy = 0u; iy < grid_h; iy++) {
    var y = start_h + f32(ph) * bin_h + (f32(iy) + 0.5) * bin_h / f32(grid_h);
    for (var ix = 0u; ix < grid_w; ix++) {
      var xx = start_w + f32(pw) * bin_w + (f32(ix) + 0.5) * bin_w / f32(grid_w);
      var corners = vec4<f32>(0.0);
      var weights = vec4<f32>(0.0);
      var yy = y;
      if (!(yy < -1.0 || yy > height || xx < -1.0 || xx > width)) {
        yy = max(yy, 0.0);
        xx = max(xx, 0.0);
        var y_low = u32(yy);
        var x_low = u32(xx);
        var y_high = y_low + 1u;
        var x_high = x_low + 1u;
        if (y_low >= params.height - 1u) { y_low = params.height - 1u; y_high = y_low; yy = f32(y_low); }
        if (x_low >= params.width - 1u) { x_low = params.width - 1u; x_high = x_low; xx = f32(x_low); }
        let ly = yy - f32(y_low);
        let lx = xx - f32(x_low);
        weights = vec4<f32>((1.0 - ly) * (1.0 - lx), (1.0 - ly) * lx, ly * (1.0 - lx), ly * lx);
        corners = vec4<f32>(
          f32(x[base + y_low * params.width + x_low]), f32(x[base + y_low * params.width + x_high]),
          f32(x[base + y_high * params.width + x_low]), f32(x[base + y_high * params.width + x_high]),
        );
      }
      let weighted = weights * corners;
      if (MAX == 1u) {
        let value = max(max(weighted.x, weighted.y), max(weighted.z, weighted.w));
        largest = select(max(largest, value), value, first);
        first = false;
      } else {
        sum += weighted.x + weighted.y + weighted.z + weighted.w;
      }
    }
  }
  output[plane * params.out_h * params.out_w + bin] = T(select(sum / count, largest, MAX == 1u));
}
