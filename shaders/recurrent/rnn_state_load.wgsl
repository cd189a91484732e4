// The recurrent state before the first step: H_0 = initial_h (or 0), and for LSTM C_0 =
// initial_c (or 0), copied from the operator's layout ([D, B, H], or [B, D, H] with layout=1)
// into the state scratch, which keeps each region as [D, B, H].
//
// Bindings (group 0):
//   @binding(0) initial_h  storage, read   array<T>; a placeholder when has_h is 0
//   @binding(1) initial_c  storage, read   array<T>; a placeholder when has_c is 0
//   @binding(2) state      storage, write  array<T>, regions of D * B * H (see rnn_step.wgsl)
//   @binding(3) params     uniform         Params below
// Type aliases: T is f32 or f16. Override constants: WORKGROUP_SIZE.
// Grid: x walks the hidden units, y and z the D * B (direction, batch) planes.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  planes: u32,
  hidden: u32,
  batch: u32,
  has_h: u32,
  has_c: u32,
  // Where C lives in the state; 0 when the cell has none (RNN, GRU).
  cell_offset: u32,
  direction_stride: u32,
  batch_stride: u32,
}

@group(0) @binding(0) var<storage, read> initial_h: array<T>;
@group(0) @binding(1) var<storage, read> initial_c: array<T>;
@group(0) @binding(2) var<storage, read_write> state: array<T>;
@group(0) @binding(3) var<uniform> params: Params;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let plane = workgroup.z * workgroups.y + workgroup.y;
  let unit = workgroup.x * WORKGROUP_SIZE + local_index;
  if (plane >= params.planes || unit >= params.hidden) { return; }
  let d = plane / params.batch;
  let b = plane % params.batch;
  let outside = d * params.direction_stride + b * params.batch_stride + unit;
  let inside = plane * params.hidden + unit;
  var h = T(0.0);
  if (params.has_h == 1u) { h = initial_h[outside]; }
  state[inside] = h;
  if (params.cell_offset != 0u) {
    var c = T(0.0);
    if (params.has_c == 1u) { c = initial_c[outside]; }
    state[params.cell_offset + inside] = c;
  }
}
