// Row normalization of the decoder, one workgroup per row, in f32:
//
//   LayerNorm (GPT-2): y = (x - mean) / sqrt(var + eps) * w + b, var of the centred values
//                      (a second pass, not E[x^2] - mean^2, which cancels when |mean| >> std)
//   RMSNorm  (Llama):  y = x / sqrt(mean(x^2) + eps) * w
//
// GATHER normalizes only the step's sampled rows (the final norm before lm_head): output row r
// is input row rows[r].
//
// Bindings (group 0):
//   @binding(0) input   storage, read        array<f32>, rows of hidden
//   @binding(1) weight  storage, read        array<W>, hidden
//   @binding(2) bias    storage, read        array<W>, hidden; any buffer without HAS_BIAS
//   @binding(3) rows    storage, read        array<u32>, the sampled rows' token rows; any buffer without GATHER
//   @binding(4) output  storage, read_write  array<f32>
//   @binding(5) params  uniform              Params below
//   @binding(6) step    uniform              Step
// Type alias: W. Override constants: RMS, HAS_BIAS, GATHER.
// Workgroup (64, 1, 1); grid (rows, 1, 1). Prelude: llm/step.wgsl.

override RMS: bool = false;
override HAS_BIAS: bool = false;
override GATHER: bool = false;
const WORKGROUP_SIZE: u32 = 64u;

struct Params {
  hidden: u32,
  epsilon: f32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> input: array<f32>;
@group(0) @binding(1) var<storage, read> weight: array<W>;
@group(0) @binding(2) var<storage, read> bias: array<W>;
@group(0) @binding(3) var<storage, read> rows: array<u32>;
@group(0) @binding(4) var<storage, read_write> output: array<f32>;
@group(0) @binding(5) var<uniform> params: Params;
@group(0) @binding(6) var<uniform> step: Step;

var<workgroup> partial: array<f32, WORKGROUP_SIZE>;

// The sum of every lane's `value`; every lane must call it.
fn workgroup_sum(lane: u32, value: f32) -> f32 {
  partial[lane] = value;
  for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
    workgroupBarrier();
    if (lane < half) { partial[lane] = partial[lane] + partial[lane + half]; }
  }
  workgroupBarrier();
  let total = partial[0];
  workgroupBarrier();
  return total;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) workgroup: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let row = workgroup.x;
  if (row >= select(step.tokens, step.logit_rows, GATHER)) { return; }
  let source = select(row, rows[row], GATHER) * params.hidden;
  let destination = row * params.hidden;
  let count = f32(params.hidden);

  var mean = 0.0;
  if (!RMS) {
    var sum = 0.0;
    for (var j = lane; j < params.hidden; j += WORKGROUP_SIZE) { sum += input[source + j]; }
    mean = workgroup_sum(lane, sum) / count;
  }
  var squares = 0.0;
  for (var j = lane; j < params.hidden; j += WORKGROUP_SIZE) {
    let centred = input[source + j] - mean;
    squares += centred * centred;
  }
  let inverse = inverseSqrt(workgroup_sum(lane, squares) / count + params.epsilon);
  for (var j = lane; j < params.hidden; j += WORKGROUP_SIZE) {
    var y = (input[source + j] - mean) * inverse * f32(weight[j]);
    if (HAS_BIAS) { y += f32(bias[j]); }
    output[destination + j] = y;
  }
}
