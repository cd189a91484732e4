// Strided copy: every data-movement operator that only re-indexes elements.
//
//   for each coord c in shape:  output[out_offset + sum_d c_d * out_strides[d]]
//                                 = input[in_offset + sum_d c_d * in_strides[d]]
//
// Transpose (permuted input strides), Expand (stride 0 on broadcast dims), Slice (start offset,
// strides times steps, negative for negative steps), Concat (one dispatch per input, writing at
// its offset along the axis), Split (one dispatch per output) and Tile (each tiled dim split into
// [repeats, dim] with input stride 0 on the repeats) all map onto it.
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) output  storage, write  array<T>
//   @binding(2) params  uniform         Params below
// Type aliases: T is u32 (any 4-byte element: f32, i32) or f16, or a vec4 of those (the host
// then walks the copy in vec4 units: innermost dim contiguous on both sides); E, when present,
// is the vec4's element type.
// Override constants: WORKGROUP_SIZE. Unrolled: MAX_RANK (the //#for block). Preludes:
// common/index.wgsl (fast_div).
// Up to MAX_RANK dims, merged by the host where both sides stay contiguous, stored innermost
// first.

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  rank: u32,
  in_offset: u32,
  out_offset: u32,
  // Dim d (0 = innermost) is [d / 4][d % 4].
  shape: array<vec4<u32>, 2>,
  inverse: array<vec4<f32>, 2>,
  in_strides: array<vec4<i32>, 2>,
  out_strides: array<vec4<i32>, 2>,
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
  var rest = index;
  var in_index = i32(params.in_offset);
  var out_index = i32(params.out_offset);
  // Dims innermost first. Unrolled, so every uniform read has a constant index: a software GPU
  // (lavapipe) turns a uniform array read at a loop-variable index into a read per lane.
  //#for d in MAX_RANK
  if ({d}u < params.rank) {
    let size = params.shape[{d}u / 4u][{d}u % 4u];
    let quotient = fast_div(rest, size, params.inverse[{d}u / 4u][{d}u % 4u]);
    let coord = i32(rest - quotient * size);
    rest = quotient;
    in_index += coord * params.in_strides[{d}u / 4u][{d}u % 4u];
    out_index += coord * params.out_strides[{d}u / 4u][{d}u % 4u];
  }
  //#end
  output[u32(out_index)] = input[u32(in_index)];
}
