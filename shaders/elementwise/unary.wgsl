// Element-wise activation: output[i] = f(input[i]).
//
// Bindings (group 0):
//   @binding(0) input   storage, read
//   @binding(1) output  storage, write (same element count)
//   @binding(2) params  uniform { count }
// Override constants:
//   OP              0 = Relu, 1 = Sigmoid, 2 = Tanh (named in services/executor/kernels/unary.ts)
//   WORKGROUP_SIZE  invocations per workgroup; one element per invocation
// The grid may be 2-D when count / WORKGROUP_SIZE exceeds the 65535 workgroups per dimension:
// the element index is the row-major position of the invocation in the whole grid.

const OP_RELU: u32 = 0u;
const OP_SIGMOID: u32 = 1u;
const OP_TANH: u32 = 2u;

override OP: u32 = OP_RELU;
override WORKGROUP_SIZE: u32 = 256u;

struct Params {
  count: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read_write> output: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;

// sigmoid(x) = 1 / (1 + exp(-x)), evaluated on the side where exp cannot overflow:
// for x < 0 it is exp(x) / (1 + exp(x)).
fn sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}

fn apply(x: f32) -> f32 {
  switch (OP) {
    case OP_SIGMOID: { return sigmoid(x); }
    // tanh(±10) is ±1 in f32; clamping keeps exp-based tanh implementations from overflowing to NaN.
    case OP_TANH: { return tanh(clamp(x, -10.0, 10.0)); }
    default: { return max(x, 0.0); }
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
  output[index] = apply(input[index]);
}
