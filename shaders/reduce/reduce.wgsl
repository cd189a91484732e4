// Reduction over any set of axes (ReduceSum / ReduceMean / ReduceMax / ReduceMin / ReduceProd,
// GlobalAveragePool, GlobalMaxPool):
//
//   output[o] = REDUCE over r of input[base(o) + r0 * s0 + r1 * s1 + r2 * s2]
//
// The host splits the input's dims into kept dims (up to 4, unravelled from the output index,
// with their input strides) and reduced dims (up to 3 after merging, walked by nested loops with
// no index division).
//
// Bindings (group 0):
//   @binding(0) input   storage, read   array<T>
//   @binding(1) output  storage, write  array<T>
//   @binding(2) params  uniform         Params below
// Type aliases: T is f32, f16 or i32 (accumulation in f32).
// Override constants:
//   WORKGROUP_SIZE  1: one invocation per output (short reductions, many outputs);
//                   a power of two: one workgroup per output, the innermost reduced dim split
//                   across invocations, then a tree reduction in workgroup memory.
// Preludes: common/index.wgsl (fast_div).
//
// Ops: 0 sum, 1 mean (sum / count), 2 max, 3 min, 4 product, 5 sum of squares, 6 L1, 7 L2,
// 8 log of the sum, 9 log-sum-exp: two passes, the maximum m first, then log(sum exp(x - m)) + m,
// so no exponent overflows. Max and min of an empty set give -inf / +inf as ONNX's identity
// elements; the log-sum-exp of nothing is log(0) = -inf.

override WORKGROUP_SIZE: u32 = 1u;

struct Params {
  outputs: u32,
  op: u32,
  kept_rank: u32,
  reduce_count: u32,
  kept_shape: vec4<u32>,
  kept_inverse: vec4<f32>,
  kept_strides: vec4<u32>,
  // Innermost first: dims[0] is walked fastest.
  reduce_dims: vec4<u32>,
  reduce_strides: vec4<u32>,
}

@group(0) @binding(0) var<storage, read> input: array<T>;
@group(0) @binding(1) var<storage, read_write> output: array<T>;
@group(0) @binding(2) var<uniform> params: Params;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

const OP_LOG_SUM_EXP: u32 = 9u;
// The second pass of log-sum-exp: the sum of exp(x - shift).
const OP_SUM_EXP: u32 = 10u;

fn identity_of(op: u32) -> f32 {
  switch (op) {
    case 2u: { return bitcast<f32>(select(0xff800000u, 0u, op == 0u)); }
    case 3u: { return bitcast<f32>(select(0x7f800000u, 0u, op == 0u)); }
    case 4u: { return 1.0; }
    default: { return 0.0; }
  }
}

fn combine(acc: f32, x: f32, op: u32, shift: f32) -> f32 {
  switch (op) {
    case 10u: { return acc + exp(x - shift); }
    case 2u: { return max(acc, x); }
    case 3u: { return min(acc, x); }
    case 4u: { return acc * x; }
    case 5u, 7u: { return acc + x * x; }
    case 6u: { return acc + abs(x); }
    default: { return acc + x; }
  }
}

// Combining two partial results (squares and absolute values are already taken).
fn merge(left: f32, right: f32, op: u32) -> f32 {
  switch (op) {
    case 2u: { return max(left, right); }
    case 3u: { return min(left, right); }
    case 4u: { return left * right; }
    default: { return left + right; }
  }
}

fn finish(acc: f32, op: u32) -> f32 {
  switch (op) {
    // The mean of nothing is 0 (onnxruntime's answer), not 0 / 0.
    case 1u: { return select(acc / f32(params.reduce_count), 0.0, params.reduce_count == 0u); }
    case 7u: { return sqrt(acc); }
    case 8u: { return log(acc); }
    default: { return acc; }
  }
}

// Combines the reduced elements of one output (`base`) with `op`, then, with a workgroup per
// output, the invocations' partial results: every invocation gets the total. Called in uniform
// control flow (the barriers), once per pass.
fn reduce_pass(op: u32, base: u32, lane_start: u32, reduce_dim0: u32, local_index: u32, shift: f32) -> f32 {
  var acc = identity_of(op);
  for (var r2 = 0u; r2 < params.reduce_dims[2]; r2++) {
    for (var r1 = 0u; r1 < params.reduce_dims[1]; r1++) {
      let row = base + r2 * params.reduce_strides[2] + r1 * params.reduce_strides[1];
      for (var r0 = lane_start; r0 < reduce_dim0; r0 += WORKGROUP_SIZE) {
        acc = combine(acc, f32(input[row + r0 * params.reduce_strides[0]]), op, shift);
      }
    }
  }
  if (WORKGROUP_SIZE > 1u) {
    partial[local_index] = acc;
    for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
      workgroupBarrier();
      if (local_index < half) {
        partial[local_index] = merge(partial[local_index], partial[local_index + half], op);
      }
    }
    workgroupBarrier();
    acc = partial[0];
    // Everyone has read the total before a second pass overwrites partial[].
    workgroupBarrier();
  }
  return acc;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let group = workgroup.y * workgroups.x + workgroup.x;
  let out_index = select(group * WORKGROUP_SIZE + local_index, group, WORKGROUP_SIZE > 1u);
  // No early return: with one invocation per output it would be non-uniform, and WGSL then
  // refuses the barriers below (which that variant never reaches).
  let in_range = out_index < params.outputs;

  var rest = select(0u, out_index, in_range);
  var base = 0u;
  for (var dim = i32(params.kept_rank) - 1; dim >= 0; dim--) {
    let size = params.kept_shape[dim];
    let quotient = fast_div(rest, size, params.kept_inverse[dim]);
    base += (rest - quotient * size) * params.kept_strides[dim];
    rest = quotient;
  }

  let op = params.op;
  let lane_start = select(0u, local_index, WORKGROUP_SIZE > 1u);
  let reduce_dim0 = select(0u, params.reduce_dims[0], in_range);
  var result: f32;
  if (op == OP_LOG_SUM_EXP) {
    let largest = reduce_pass(2u, base, lane_start, reduce_dim0, local_index, 0.0);
    // An empty or all -inf set has no finite maximum to shift by; its sum of exp(x) is 0 then.
    let shift = select(0.0, largest, largest >= -3.402823466e+38 && largest <= 3.402823466e+38);
    result = log(reduce_pass(OP_SUM_EXP, base, lane_start, reduce_dim0, local_index, shift)) + shift;
  } else {
    result = finish(reduce_pass(op, base, lane_start, reduce_dim0, local_index, 0.0), op);
  }
  if (in_range && lane_start == 0u) { output[out_index] = T(result); }
}
