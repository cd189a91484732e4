// The input projection of RNN / GRU / LSTM for every time step at once (the part of each gate
// that does not depend on the hidden state), before the time loop runs:
//
//   projection[t, d, b, row] = sum_k x[t, b, k] * w[d, row, k] + Wb[d, row] (+ Rb[d, row])
//
// where row walks the gates' rows (gates * hidden). The recurrence bias Rb is folded in for
// rows below recurrent_bias_rows: every row, except GRU's hidden gate with linear_before_reset,
// where Rb sits inside the reset gate's product and the step kernel adds it.
//
// Bindings (group 0):
//   @binding(0) x           storage, read   array<T>, [T, B, I] or [B, T, I] (strides below)
//   @binding(1) w           storage, read   array<T>, [D, rows, I]
//   @binding(2) bias        storage, read   array<T>, [D, 2 * rows] (Wb then Rb); a placeholder without B
//   @binding(3) projection  storage, write  array<T>, [T, D, B, rows]
//   @binding(4) params      uniform         Params below
// Type aliases: T is f32 or f16 (arithmetic in f32). Override constants: WORKGROUP_SIZE.
// Grid: x walks the rows, y and z the T * D * B (time, direction, batch) planes.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  planes: u32,
  rows: u32,
  input_size: u32,
  directions: u32,
  batch: u32,
  x_time_stride: u32,
  x_batch_stride: u32,
  has_bias: u32,
  recurrent_bias_rows: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> w: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read_write> projection: array<T>;
@group(0) @binding(4) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let plane = workgroup.z * workgroups.y + workgroup.y;
  let row = workgroup.x * WORKGROUP_SIZE + local_index;
  if (plane >= params.planes || row >= params.rows) { return; }
  // plane = (t * D + d) * B + b
  let b = plane % params.batch;
  let d = (plane / params.batch) % params.directions;
  let t = plane / (params.batch * params.directions);
  let x_base = t * params.x_time_stride + b * params.x_batch_stride;
  let w_base = (d * params.rows + row) * params.input_size;
  var sum = 0.0;
  for (var k = 0u; k < params.input_size; k++) {
    sum += f32(x[x_base + k]) * f32(w[w_base + k]);
  }
  if (params.has_bias == 1u) {
    let bias_base = d * 2u * params.rows;
    sum += f32(bias[bias_base + row]);
    if (row < params.recurrent_bias_rows) { sum += f32(bias[bias_base + params.rows + row]); }
  }
  projection[plane * params.rows + row] = T(sum);
}
