// Pad (opset 11+ semantics, up to 6 dims): each output coordinate c maps to c - pads_begin in
// the input; outside the input, MODE decides:
//   0 constant: the value          1 reflect: mirror without repeating the edge (dcb|abcd|cba)
//   2 edge: repeat the edge         3 wrap: wrap around (cd|abcd|ab)
// Negative pads crop (the coordinate simply starts inside the input). Wrap goes round what is
// left after cropping, as onnxruntime does: pads (-1, 1) of abcd give bcd|b.
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) output  storage, write  array<T>
//   @binding(2) params  uniform         Params below
// Type aliases: T is f32, f16 or i32.
// Override constants: WORKGROUP_SIZE. Preludes: common/index.wgsl (fast_div).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  rank: u32,
  mode: u32,
  value: f32,
  out_shape: array<vec4<u32>, 2>,
  out_inverse: array<vec4<f32>, 2>,
  in_shape: array<vec4<i32>, 2>,
  in_strides: array<vec4<u32>, 2>,
  pads_begin: array<vec4<i32>, 2>,
  pads_end: array<vec4<i32>, 2>,
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
  var in_index = 0u;
  var outside = false;
  for (var dim = i32(params.rank) - 1; dim >= 0; dim--) {
    let size = params.out_shape[dim / 4][dim % 4];
    let quotient = fast_div(rest, size, params.out_inverse[dim / 4][dim % 4]);
    let out_coord = i32(rest - quotient * size);
    rest = quotient;
    let n = params.in_shape[dim / 4][dim % 4];
    var c = out_coord - params.pads_begin[dim / 4][dim % 4];
    if (c < 0 || c >= n) {
      switch (params.mode) {
        case 1u: {
          // Reflect as many times as needed (only once for valid ONNX pads).
          let period = max(2 * (n - 1), 1);
          c = ((c % period) + period) % period;
          c = select(c, period - c, c >= n);
        }
        case 2u: { c = clamp(c, 0, n - 1); }
        case 3u: {
          let low = max(-params.pads_begin[dim / 4][dim % 4], 0);
          let span = max(n - low - max(-params.pads_end[dim / 4][dim % 4], 0), 1);
          c = low + (((c - low) % span) + span) % span;
        }
        default: { outside = true; c = 0; }
      }
    }
    in_index += u32(c) * params.in_strides[dim / 4][dim % 4];
  }
  if (outside) {
    output[index] = T(params.value);
  } else {
    output[index] = input[in_index];
  }
}
