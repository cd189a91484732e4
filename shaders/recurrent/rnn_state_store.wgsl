// The recurrent state after the last step into the operator's outputs Y_h (and for LSTM Y_c),
// from the state scratch's [D, B, H] regions into [D, B, H], or [B, D, H] with layout=1.
//
// Bindings (group 0):
//   @binding(0) state   storage, read   array<T>
//   @binding(1) y_h     storage, write  array<T>; a placeholder when write_h is 0
//   @binding(2) y_c     storage, write  array<T>; a placeholder when write_c is 0
//   @binding(3) params  uniform         Params below
// Type aliases: T is f32 or f16. Override constants: WORKGROUP_SIZE.
// Grid: x walks the hidden units, y and z the D * B (direction, batch) planes.

override WORKGROUP_SIZE: u32 = 64u;

struct Params {
  planes: u32,
  hidden: u32,
  batch: u32,
  write_h: u32,
  write_c: u32,
  // The state half holding the last H, and where C lives.
  final_offset: u32,
  cell_offset: u32,
  direction_stride: u32,
  batch_stride: u32,
}

@group(0) @binding(0) var<storage, read> state: array<T>;
@group(0) @binding(1) var<storage, read_write> y_h: array<T>;
@group(0) @binding(2) var<storage, read_write> y_c: array<T>;
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
  if (params.write_h == 1u) { y_h[outside] = state[params.final_offset + inside]; }
  if (params.write_c == 1u) { y_c[outside] = state[params.cell_offset + inside]; }
}
