// Element-wise binary op with numpy-style broadcasting: output[i] = a[ia(i)] OP b[ib(i)].
//
// Bindings (group 0):
//   @binding(0) a       storage, read
//   @binding(1) b       storage, read
//   @binding(2) output  storage, write
//   @binding(3) params  uniform Params below
// Override constants:
//   OP              0 = Add, 1 = Sub, 2 = Mul, 3 = Div (named in services/executor/kernels/binary.ts)
//   WORKGROUP_SIZE  invocations per workgroup; one element per invocation
//
// Broadcasting: the host right-aligns both shapes to the output's rank (up to 6), gives a
// broadcast dim (size 1 against a larger output dim) stride 0, and merges neighbouring dims that
// broadcast alike, so the common cases ([B, N] + [N], equal shapes) unravel only 1 or 2 dims.
// Then ia(i) = sum_d coord_d(i) * a_strides[d], where coord(i) unravels i over out_shape.

const OP_ADD: u32 = 0u;
const OP_SUB: u32 = 1u;
const OP_MUL: u32 = 2u;
const OP_DIV: u32 = 3u;

override OP: u32 = OP_ADD;
override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
  rank: u32,
  _pad0: u32,
  _pad1: u32,
  // Dims are stored 4 per vec4 (uniform arrays need 16-byte elements): dim d is [d / 4][d % 4].
  out_shape: array<vec4<u32>, 2>,
  a_strides: array<vec4<u32>, 2>,
  b_strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> output: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

fn combine(x: f32, y: f32) -> f32 {
  switch (OP) {
    case OP_SUB: { return x - y; }
    case OP_MUL: { return x * y; }
    case OP_DIV: { return x / y; }
    default: { return x + y; }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }

  // Unravel the output index from the innermost dim outwards.
  var rest = index;
  var a_index = 0u;
  var b_index = 0u;
  for (var dim = i32(params.rank) - 1; dim >= 0; dim--) {
    let size = params.out_shape[dim / 4][dim % 4];
    let coord = rest % size;
    rest = rest / size;
    a_index += coord * params.a_strides[dim / 4][dim % 4];
    b_index += coord * params.b_strides[dim / 4][dim % 4];
  }
  output[index] = combine(a[a_index], b[b_index]);
}
