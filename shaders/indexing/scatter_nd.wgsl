// ScatterND, after the output holds a copy of the data: indices [..tuples, k] address slices of
// the data (its trailing dims past k); one invocation per element of a slice walks every tuple
// in order, so repeated tuples combine in the order ONNX lists them:
//
//   output[wrap(indices[t]), s] = combine(that element, updates[t, s])
//
// combine by REDUCTION: 0 none (replace), 1 add, 2 mul, 3 max, 4 min. Out-of-range indices
// (invalid ONNX) are clamped into their dim.
//
// Bindings (group 0):
//   @binding(0) indices  storage, read        array<i32>
//   @binding(1) updates  storage, read        array<T>
//   @binding(2) output   storage, read_write  array<T>
//   @binding(3) params   uniform              Params below
// Type aliases: T is f32, f16 or i32.
// Override constants: WORKGROUP_SIZE. Unrolled: MAX_RANK (the longest tuple).

override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  slice_size: u32,
  tuples: u32,
  k: u32,
  reduction: u32,
  // The data dims the tuple indexes and their strides: entry j is [j / 4][j % 4].
  dims: array<vec4<i32>, 2>,
  strides: array<vec4<u32>, 2>,
}

@group(0) @binding(0) var<storage, read> indices: array<i32>;
@group(0) @binding(1) var<storage, read> updates: array<T>;
@group(0) @binding(2) var<storage, read_write> output: array<T>;
@group(0) @binding(3) var<uniform> params: Params;

fn combine(old: T, update: T) -> T {
  switch (params.reduction) {
    case 1u: { return old + update; }
    case 2u: { return old * update; }
    case 3u: { return max(old, update); }
    case 4u: { return min(old, update); }
    default: { return update; }
  }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let s = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (s >= params.slice_size) { return; }
  for (var t = 0u; t < params.tuples; t++) {
    var offset = s;
    //#for j in MAX_RANK
    if ({j}u < params.k) {
      let dim = params.dims[{j}u / 4u][{j}u % 4u];
      var position = indices[t * params.k + {j}u];
      position = select(position, position + dim, position < 0);
      offset += u32(clamp(position, 0, dim - 1)) * params.strides[{j}u / 4u][{j}u % 4u];
    }
    //#end
    output[offset] = combine(output[offset], updates[t * params.slice_size + s]);
  }
}
