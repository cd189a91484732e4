// MaxUnpool, as onnxruntime computes it: the output is zero except where indices put the
// input's values, output[indices[j]] = x[j] for every element j of x. indices[j] is a flat
// position in the output (its shape output_shape, else the one kernel_shape, strides and pads
// infer), as a MaxPool's Indices are in its input; one outside the output is skipped, and when
// two elements name the same position either may land there.
// Two passes: ZERO fills the output with 0, then the scatter.
//
// Bindings (group 0):
//   @binding(0) x        storage, read   array<T>
//   @binding(1) indices  storage, read   array<i32>, x's shape (INT64 on the host)
//   @binding(2) output   storage, write  array<T>
//   @binding(3) params   uniform         Params below
// Type aliases: T is f32, f16 or i32. Override constants: ZERO (1: the fill pass), WORKGROUP_SIZE.
// Grid: linear over the output (fill) or the input (scatter).

override ZERO: u32 = 0u;
override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  input_count: u32,
  output_count: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> indices: array<i32>;
@group(0) @binding(2) var<storage, read_write> output: array<T>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (ZERO == 1u) {
    if (index < params.output_count) { output[index] = T(0); }
    return;
  }
  if (index >= params.input_count) { return; }
  let destination = indices[index];
  if (destination >= 0 && u32(destination) < params.output_count) { output[u32(destination)] = x[index]; }
}
