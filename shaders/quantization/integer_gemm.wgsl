// Integer GEMM (MatMulInteger, QLinearMatMul), one invocation per output element:
//   acc = sum_k (a[m, k] - a_zero[m]) * (b[k, n] - b_zero[n])   exact in i32
//   out = acc                                                    (requantize == 0)
//   out = clamp(round_half_even(f32(acc) * multiplier[n]) + y_zero, low, high)   (requantize == 1)
//
// Bindings (group 0):
//   @binding(0) a           storage, read   array<i32>  [batches of M x K]
//   @binding(1) b           storage, read   array<i32>  [batches of K x N]
//   @binding(2) a_zero      storage, read   array<i32>  [M]
//   @binding(3) b_zero      storage, read   array<i32>  [N]
//   @binding(4) multiplier  storage, read   array<f32>  [N]  (a_scale * b_scale[n] / y_scale)
//   @binding(5) offsets     storage, read   array<u32>  [batches x 2] (A, B element offsets)
//   @binding(6) output      storage, write  array<i32>  [batches x M x N]
//   @binding(7) params      uniform         Params below
// Override constants: WORKGROUP_SIZE. The grid may be 2-D.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  count: u32,
  m: u32,
  n: u32,
  k: u32,
  requantize: u32,
  low: i32,
  high: i32,
  y_zero: i32,
}

@group(0) @binding(0) var<storage, read> a: array<i32>;
@group(0) @binding(1) var<storage, read> b: array<i32>;
@group(0) @binding(2) var<storage, read> a_zero: array<i32>;
@group(0) @binding(3) var<storage, read> b_zero: array<i32>;
@group(0) @binding(4) var<storage, read> multiplier: array<f32>;
@group(0) @binding(5) var<storage, read> offsets: array<u32>;
@group(0) @binding(6) var<storage, read_write> output: array<i32>;
@group(0) @binding(7) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let index = (workgroup.y * workgroups.x + workgroup.x) * WORKGROUP_SIZE + local_index;
  if (index >= params.count) { return; }
  let column = index % params.n;
  let row = (index / params.n) % params.m;
  let batch = index / (params.n * params.m);
  let a_start = offsets[2u * batch] + row * params.k;
  let b_start = offsets[2u * batch + 1u] + column;
  let row_zero = a_zero[row];
  let column_zero = b_zero[column];
  var acc = 0i;
  for (var step = 0u; step < params.k; step++) {
    acc += (a[a_start + step] - row_zero) * (b[b_start + step * params.n] - column_zero);
  }
  if (params.requantize == 0u) {
    output[index] = acc;
    return;
  }
  let scaled = round(f32(acc) * multiplier[column]) + f32(params.y_zero);
  output[index] = i32(clamp(scaled, f32(params.low), f32(params.high)));
}
