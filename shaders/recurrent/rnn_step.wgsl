// One time step of RNN, GRU or LSTM for every direction, batch row and hidden unit. The input
// projection X · W^T of every step is already computed (one GEMM before the loop); this adds
// the biases Wb + Rb and the recurrence R · H_{t-1} and applies the cell (gate rows in ONNX's
// order, f / g / h the node's activations, every activation's input clipped to [-clip, clip];
// P below is the projection plus Wb + Rb, without Rb_h in GRU with linear_before_reset):
//
//   RNN:  H_t = f(P_i + R_i H_{t-1})
//   GRU:  z = f(P_z + R_z H_{t-1}),  r = f(P_r + R_r H_{t-1})
//         h~ = g(P_h + R_h (r ⊙ H_{t-1}))                   linear_before_reset = 0 (Rb_h is in P_h)
//         h~ = g(P_h + r ⊙ (R_h H_{t-1} + Rb_h))            linear_before_reset = 1
//         H_t = (1 - z) ⊙ h~ + z ⊙ H_{t-1}
//   LSTM: i = f(P_i + R_i H_{t-1} + p_i ⊙ C_{t-1}),  f_t = f(P_f + R_f H_{t-1} + p_f ⊙ C_{t-1})
//         (f_t = 1 - i with input_forget),  c~ = g(P_c + R_c H_{t-1})
//         C_t = f_t ⊙ C_{t-1} + i ⊙ c~,  o = f(P_o + R_o H_{t-1} + p_o ⊙ C_t),  H_t = o ⊙ h(C_t)
//
// Direction d walks time forward, or backward when bit d of reverse_mask is set. A batch row
// whose sequence is shorter than the step's time index keeps its state and writes Y = 0.
// H ping-pongs between two state halves (every unit reads all of H_{t-1}); C is updated in
// place (each unit reads only its own). GRU without linear_before_reset needs r ⊙ H_{t-1} of
// every unit before any h~, so it runs two dispatches per step: phase 0 stores r ⊙ H_{t-1}, phase
// 1 the rest; every other cell runs phase 1 alone.
//
// Bindings (group 0):
//   @binding(0) projection  storage, read        array<T>, X · W^T as [T, B, D, gates * H] or [B, T, D, gates * H]
//   @binding(1) r           storage, read        array<T>, [D, gates * H, H]
//   @binding(2) bias        storage, read        array<T>, [D, 2 * gates * H]; a placeholder without B
//   @binding(3) peepholes   storage, read        array<T>, [D, 3 * H]; a placeholder without P
//   @binding(4) lengths     storage, read        array<u32>, [B], each sequence's length
//   @binding(5) state       storage, read_write  array<T>, regions of D * B * H at the offsets below
//   @binding(6) y           storage, write       array<T>, Y (strides below); a placeholder unless write_y
//   @binding(7) params      uniform              Params below
// Type aliases: T is f32 or f16 (arithmetic in f32).
// Override constants: CELL (0 RNN, 1 GRU, 2 LSTM), WORKGROUP_SIZE.
// Grid: x walks the hidden units, y and z the D * B (direction, batch) planes.

override CELL: u32 = 0u;
override WORKGROUP_SIZE: u32 = 64u;

const CELL_GRU: u32 = 1u;
const CELL_LSTM: u32 = 2u;

struct Params {
  planes: u32,
  hidden: u32,
  batch: u32,
  directions: u32,
  time_steps: u32,
  step: u32,
  reverse_mask: u32,
  phase: u32,
  read_offset: u32,
  write_offset: u32,
  cell_offset: u32,
  reset_offset: u32,
  y_time_stride: u32,
  y_direction_stride: u32,
  y_batch_stride: u32,
  write_y: u32,
  has_bias: u32,
  has_peepholes: u32,
  linear_before_reset: u32,
  input_forget: u32,
  // The clip threshold; f32's largest value when the node has none.
  clip: f32,
  projection_time_stride: u32,
  projection_batch_stride: u32,
  // Rows below this count add Rb as well as Wb: every row, except GRU's hidden gate with
  // linear_before_reset, whose Rb_h sits inside the reset gate's product.
  recurrent_bias_rows: u32,
  // Activation slot d * 3 + k (k: f, g, h): its code (see activate), alpha and beta.
  activations: array<vec4<u32>, 2>,
  alphas: array<vec4<f32>, 2>,
  betas: array<vec4<f32>, 2>,
}

@group(0) @binding(0) var<storage, read> projection: array<T>;
@group(0) @binding(1) var<storage, read> r: array<T>;
@group(0) @binding(2) var<storage, read> bias: array<T>;
@group(0) @binding(3) var<storage, read> peepholes: array<T>;
@group(0) @binding(4) var<storage, read> lengths: array<u32>;
@group(0) @binding(5) var<storage, read_write> state: array<T>;
@group(0) @binding(6) var<storage, read_write> y: array<T>;
@group(0) @binding(7) var<uniform> params: Params;

fn gate_count() -> u32 {
  if (CELL == CELL_LSTM) { return 4u; }
  if (CELL == CELL_GRU) { return 3u; }
  return 1u;
}

fn stable_sigmoid(x: f32) -> f32 {
  if (x >= 0.0) { return 1.0 / (1.0 + exp(-x)); }
  let e = exp(x);
  return e / (1.0 + e);
}

// tanh(±10) is ±1 in f32; clamping keeps exp-based tanh implementations from overflowing to NaN.
fn stable_tanh(x: f32) -> f32 {
  return tanh(clamp(x, -10.0, 10.0));
}

// The activations ONNX lists for the recurrent operators, by the codes the host writes.
fn activate(slot: u32, x: f32) -> f32 {
  let code = params.activations[slot / 4u][slot % 4u];
  let alpha = params.alphas[slot / 4u][slot % 4u];
  let beta = params.betas[slot / 4u][slot % 4u];
  switch code {
    case 0u: { return max(x, 0.0); }
    case 1u: { return stable_tanh(x); }
    case 2u: { return stable_sigmoid(x); }
    case 3u: { return alpha * x + beta; }
    case 4u: { return select(alpha * x, x, x >= 0.0); }
    case 5u: { return select(0.0, x, x > alpha); }
    case 6u: { return alpha * stable_tanh(beta * x); }
    case 7u: { return clamp(alpha * x + beta, 0.0, 1.0); }
    case 8u: { return select(alpha * (exp(x) - 1.0), x, x >= 0.0); }
    case 9u: { return x / (1.0 + abs(x)); }
    // Softplus: log(1 + e^x), written so that large x does not overflow.
    default: { return max(x, 0.0) + log(1.0 + exp(-abs(x))); }
  }
}

// Gate row `row` of direction d's input projection at `base`, with its biases.
fn projected(d: u32, base: u32, row: u32) -> f32 {
  var value = f32(projection[base + row]);
  if (params.has_bias == 1u) {
    let rows = gate_count() * params.hidden;
    value += f32(bias[d * 2u * rows + row]);
    if (row < params.recurrent_bias_rows) { value += f32(bias[d * 2u * rows + rows + row]); }
  }
  return value;
}

fn clipped(x: f32) -> f32 {
  return clamp(x, -params.clip, params.clip);
}

// Gate row `row` of direction d's recurrence times the hidden vector at `vector_base` of the state.
fn recurrence(d: u32, row: u32, vector_base: u32) -> f32 {
  let r_base = (d * gate_count() * params.hidden + row) * params.hidden;
  var sum = 0.0;
  for (var k = 0u; k < params.hidden; k++) {
    sum += f32(r[r_base + k]) * f32(state[vector_base + k]);
  }
  return sum;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(
  @builtin(workgroup_id) workgroup: vec3<u32>,
  @builtin(num_workgroups) workgroups: vec3<u32>,
  @builtin(local_invocation_index) local_index: u32,
) {
  let plane = workgroup.z * workgroups.y + workgroup.y;
  let unit = workgroup.x * WORKGROUP_SIZE + local_index;
  if (plane >= params.planes || unit >= params.hidden) { return; }
  let hidden = params.hidden;
  let d = plane / params.batch;
  let b = plane % params.batch;
  let reverse = ((params.reverse_mask >> d) & 1u) == 1u;
  let t = select(params.step, params.time_steps - 1u - params.step, reverse);
  let valid = t < lengths[b];
  let index = plane * hidden + unit;
  let previous_base = params.read_offset + plane * hidden;
  let previous = f32(state[previous_base + unit]);
  let projection_base = t * params.projection_time_stride + b * params.projection_batch_stride + d * gate_count() * hidden;
  let f_slot = d * 3u;

  if (CELL == CELL_GRU && params.phase == 0u) {
    if (valid) {
      let reset = activate(f_slot, clipped(projected(d, projection_base, hidden + unit) + recurrence(d, hidden + unit, previous_base)));
      state[params.reset_offset + index] = T(reset * previous);
    }
    return;
  }
  let y_index = t * params.y_time_stride + d * params.y_direction_stride + b * params.y_batch_stride + unit;
  if (!valid) {
    state[params.write_offset + index] = T(previous);
    if (params.write_y == 1u) { y[y_index] = T(0.0); }
    return;
  }

  var next: f32;
  if (CELL == CELL_LSTM) {
    let cell_index = params.cell_offset + index;
    let cell_previous = f32(state[cell_index]);
    var peep_i = 0.0;
    var peep_o = 0.0;
    var peep_f = 0.0;
    if (params.has_peepholes == 1u) {
      let p_base = d * 3u * hidden + unit;
      peep_i = f32(peepholes[p_base]);
      peep_o = f32(peepholes[p_base + hidden]);
      peep_f = f32(peepholes[p_base + 2u * hidden]);
    }
    // Gate rows in ONNX's order: i, o, f, c.
    let input_gate = activate(f_slot, clipped(projected(d, projection_base, unit) + recurrence(d, unit, previous_base) + peep_i * cell_previous));
    var forget_gate = 1.0 - input_gate;
    if (params.input_forget == 0u) {
      forget_gate = activate(f_slot, clipped(projected(d, projection_base, 2u * hidden + unit) + recurrence(d, 2u * hidden + unit, previous_base) + peep_f * cell_previous));
    }
    let candidate = activate(f_slot + 1u, clipped(projected(d, projection_base, 3u * hidden + unit) + recurrence(d, 3u * hidden + unit, previous_base)));
    let cell = forget_gate * cell_previous + input_gate * candidate;
    let output_gate = activate(f_slot, clipped(projected(d, projection_base, hidden + unit) + recurrence(d, hidden + unit, previous_base) + peep_o * cell));
    state[cell_index] = T(cell);
    next = output_gate * activate(f_slot + 2u, cell);
  } else if (CELL == CELL_GRU) {
    // Gate rows in ONNX's order: z, r, h.
    let update = activate(f_slot, clipped(projected(d, projection_base, unit) + recurrence(d, unit, previous_base)));
    var candidate_input = projected(d, projection_base, 2u * hidden + unit);
    if (params.linear_before_reset == 1u) {
      let reset = activate(f_slot, clipped(projected(d, projection_base, hidden + unit) + recurrence(d, hidden + unit, previous_base)));
      var recurrence_bias = 0.0;
      if (params.has_bias == 1u) { recurrence_bias = f32(bias[d * 6u * hidden + 5u * hidden + unit]); }
      candidate_input += reset * (recurrence(d, 2u * hidden + unit, previous_base) + recurrence_bias);
    } else {
      candidate_input += recurrence(d, 2u * hidden + unit, params.reset_offset + plane * hidden);
    }
    let candidate = activate(f_slot + 1u, clipped(candidate_input));
    next = (1.0 - update) * candidate + update * previous;
  } else {
    next = activate(f_slot, clipped(projected(d, projection_base, unit) + recurrence(d, unit, previous_base)));
  }
  state[params.write_offset + index] = T(next);
  if (params.write_y == 1u) { y[y_index] = T(next); }
}
