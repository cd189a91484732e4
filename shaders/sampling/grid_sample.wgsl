// GridSample over 2 or 3 spatial dims, as onnxruntime computes it: output [n, c, oy, ox]
// samples x[n, c] at the grid's normalized point (gx, gy) = grid[n, oy, ox] in [-1, 1] (and
// output [n, c, oz, oy, ox] at (gx, gy, gz) = grid[n, oz, oy, ox] for a volume):
//
//   px = ((gx + 1) * W - 1) / 2,  or (gx + 1) / 2 * (W - 1) with align_corners (same for y, z)
//
// A point outside [lo, hi] (the pixel edges, or the corner pixels' centers with align_corners)
// is clamped to [0, W - 1] (border; not for cubic, whose taps are clamped one by one) or
// reflected into [lo, hi] (reflection) first; then
//   nearest:  the pixel at round_half_even(p)
//   linear:   the 2 x 2 (x 2) pixels around p, weighted by distance
//   cubic:    the 4 x 4 pixels around p, cubic convolution weights with A = -0.75 (2-D only)
// A pixel index outside the image reads 0 (zeros), the clamped index (border) or the
// reflected index (reflection).
//
// Bindings (group 0):
//   @binding(0) x       storage, read   array<T>, [N, C, (D,) H, W]
//   @binding(1) grid    storage, read   array<T>, [N, (D_out,) H_out, W_out, 2 or 3]
//   @binding(2) output  storage, write  array<T>, [N, C, (D_out,) H_out, W_out]
//   @binding(3) params  uniform         Params below
// Type aliases: T is f32 or f16 (arithmetic in f32).
// Override constants: MODE (0 nearest, 1 linear, 2 cubic), PADDING (0 zeros, 1 border,
// 2 reflection), VOLUME (1: 3 spatial dims), WORKGROUP_SIZE.
// Grid: x walks the output positions of a plane, y and z the N * C planes.

override MODE: u32 = 1u;
override PADDING: u32 = 0u;
override VOLUME: u32 = 0u;
override WORKGROUP_SIZE: u32 = 64u;

const PADDING_BORDER: u32 = 1u;
const PADDING_REFLECTION: u32 = 2u;

struct Params {
  planes: u32,
  channels: u32,
  in_d: u32,
  in_h: u32,
  in_w: u32,
  out_size: u32,
  align_corners: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> grid: array<T>;
@group(0) @binding(2) var<storage, read_write> output: array<T>;
@group(0) @binding(3) var<uniform> params: Params;

// Folds p into [lo, hi] as a mirror does, any number of times.
fn reflect_into(p: f32, lo: f32, hi: f32) -> f32 {
  let range = hi - lo;
  if (range <= 0.0) { return lo; }
  if (p < lo) {
    let distance = lo - p;
    let folds = floor(distance / range);
    let rest = distance - folds * range;
    return select(hi - rest, lo + rest, u32(folds) % 2u == 0u);
  }
  if (p > hi) {
    let distance = p - hi;
    let folds = floor(distance / range);
    let rest = distance - folds * range;
    return select(lo + rest, hi - rest, u32(folds) % 2u == 0u);
  }
  return p;
}

fn denormalize(g: f32, size: u32) -> f32 {
  let length = f32(size);
  if (params.align_corners == 1u) { return (g + 1.0) / 2.0 * (length - 1.0); }
  return ((g + 1.0) * length - 1.0) / 2.0;
}

fn low_edge() -> f32 { return select(-0.5, 0.0, params.align_corners == 1u); }

fn high_edge(size: u32) -> f32 { return select(f32(size) - 0.5, f32(size) - 1.0, params.align_corners == 1u); }

// The pixel (depth, row, column) of plane `base`, with the padding mode's rule outside the image.
fn voxel(base: u32, depth: i32, row: i32, column: i32) -> f32 {
  let d = i32(params.in_d);
  let h = i32(params.in_h);
  let w = i32(params.in_w);
  var z = depth;
  var r = row;
  var c = column;
  if (PADDING == PADDING_BORDER) {
    z = clamp(z, 0, d - 1);
    r = clamp(r, 0, h - 1);
    c = clamp(c, 0, w - 1);
  } else if (PADDING == PADDING_REFLECTION) {
    z = i32(reflect_into(f32(z), low_edge(), high_edge(params.in_d)));
    r = i32(reflect_into(f32(r), low_edge(), high_edge(params.in_h)));
    c = i32(reflect_into(f32(c), low_edge(), high_edge(params.in_w)));
  }
  if (z < 0 || z >= d || r < 0 || r >= h || c < 0 || c >= w) { return 0.0; }
  return f32(x[base + (u32(z) * params.in_h + u32(r)) * params.in_w + u32(c)]);
}

fn pixel(base: u32, row: i32, column: i32) -> f32 {
  return voxel(base, 0, row, column);
}

fn cubic_weights(t: f32) -> vec4<f32> {
  let a = -0.75;
  let s = abs(t);
  return vec4<f32>(
    ((a * (s + 1.0) - 5.0 * a) * (s + 1.0) + 8.0 * a) * (s + 1.0) - 4.0 * a,
    ((a + 2.0) * s - (a + 3.0)) * s * s + 1.0,
    ((a + 2.0) * (1.0 - s) - (a + 3.0)) * (1.0 - s) * (1.0 - s) + 1.0,
    ((a * (2.0 - s) - 5.0 * a) * (2.0 - s) + 8.0 * a) * (2.0 - s) - 4.0 * a,
  );
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let plane = workgroup.z * workgroups.y + workgroup.y;
  let position = workgroup.x * WORKGROUP_SIZE + local_index;
  if (plane >= params.planes || position >= params.out_size) { return; }
  let n = plane / params.channels;
  let coordinates = select(2u, 3u, VOLUME == 1u);
  let grid_index = (n * params.out_size + position) * coordinates;
  var px = denormalize(f32(grid[grid_index]), params.in_w);
  var py = denormalize(f32(grid[grid_index + 1u]), params.in_h);
  // A plane has depth 1 and its points depth 0, which no padding rule moves.
  var pz = 0.0;
  if (VOLUME == 1u) { pz = denormalize(f32(grid[grid_index + 2u]), params.in_d); }
  if (MODE == 0u) {
    px = round(px);
    py = round(py);
    pz = round(pz);
  }
  let outside = px < low_edge() || px > high_edge(params.in_w) || py < low_edge() || py > high_edge(params.in_h)
    || pz < low_edge() || pz > high_edge(params.in_d);
  // Cubic with border padding clamps each tap's index only (pixel), as onnxruntime does.
  if (outside && PADDING == PADDING_BORDER && MODE != 2u) {
    px = clamp(px, 0.0, f32(params.in_w) - 1.0);
    py = clamp(py, 0.0, f32(params.in_h) - 1.0);
    pz = clamp(pz, 0.0, f32(params.in_d) - 1.0);
  } else if (outside && PADDING == PADDING_REFLECTION) {
    px = reflect_into(px, low_edge(), high_edge(params.in_w));
    py = reflect_into(py, low_edge(), high_edge(params.in_h));
    pz = reflect_into(pz, low_edge(), high_edge(params.in_d));
  }
  let base = plane * params.in_d * params.in_h * params.in_w;
  var value: f32;
  if (MODE == 0u) {
    value = voxel(base, i32(pz), i32(py), i32(px));
  } else if (MODE == 1u && VOLUME == 1u) {
    let corner = floor(vec3<f32>(px, py, pz));
    let t = vec3<f32>(px, py, pz) - corner;
    let c = vec3<i32>(corner);
    value = 0.0;
    for (var dz = 0; dz < 2; dz++) {
      for (var dy = 0; dy < 2; dy++) {
        for (var dx = 0; dx < 2; dx++) {
          let weight = select(1.0 - t.x, t.x, dx == 1) * select(1.0 - t.y, t.y, dy == 1) * select(1.0 - t.z, t.z, dz == 1);
          value += weight * voxel(base, c.z + dz, c.y + dy, c.x + dx);
        }
      }
    }
  } else if (MODE == 1u) {
    let x1 = floor(px);
    let y1 = floor(py);
    let dx = px - x1;
    let dy = py - y1;
    let c = i32(x1);
    let r = i32(y1);
    value = (1.0 - dy) * ((1.0 - dx) * pixel(base, r, c) + dx * pixel(base, r, c + 1))
      + dy * ((1.0 - dx) * pixel(base, r + 1, c) + dx * pixel(base, r + 1, c + 1));
  } else {
    let x0 = floor(px) - 1.0;
    let y0 = floor(py) - 1.0;
    let wx = cubic_weights(px - x0 - 1.0);
    let wy = cubic_weights(py - y0 - 1.0);
    value = 0.0;
    for (var i = 0; i < 4; i++) {
      var row_sum = 0.0;
      for (var j = 0; j < 4; j++) {
        row_sum += wx[j] * pixel(base, i32(y0) + i, i32(x0) + j);
      }
      value += wy[i] * row_sum;
    }
  }
  output[plane * params.out_size + position] = T(value);
}
