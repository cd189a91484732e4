// Greedy decoding on the GPU: the token of each sampled row's largest logit, the lowest id on
// ties (as the host's sampler picks), so a greedy step reads back one u32 per sequence.
//
// Bindings (group 0):
//   @binding(0) logits  storage, read        array<f32>, rows of `stride`
//   @binding(1) tokens  storage, read_write  array<u32>, one per sampled row
//   @binding(2) params  uniform              Params below
//   @binding(3) step    uniform              Step
// Workgroup (64, 1, 1); grid (sampled rows, 1, 1). Prelude: llm/step.wgsl.

const LANES: u32 = 64u;

struct Params {
  vocab: u32,
  stride: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(2) var<uniform> params: Params;
@group(0) @binding(3) var<uniform> step: Step;

var<workgroup> best_value: array<f32, LANES>;
var<workgroup> best_index: array<u32, LANES>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) workgroup: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let row = workgroup.x;
  if (row >= step.logit_rows) { return; }
  let base = row * params.stride;
  var value = -3.4e38;
  var index = 0xffffffffu;
  // Each lane scans ids in increasing order, so a strict > keeps its lowest id on ties.
  for (var id = lane; id < params.vocab; id += LANES) {
    let logit = logits[base + id];
    if (logit > value || index == 0xffffffffu) {
      value = logit;
      index = id;
    }
  }
  best_value[lane] = value;
  best_index[lane] = index;
  for (var half = LANES / 2u; half > 0u; half = half / 2u) {
    workgroupBarrier();
    if (lane < half) {
      let other_value = best_value[lane + half];
      let other_index = best_index[lane + half];
      if (other_value > best_value[lane] || (other_value == best_value[lane] && other_index < best_index[lane])) {
        best_value[lane] = other_value;
        best_index[lane] = other_index;
      }
    }
  }
  if (lane == 0u) { tokens[row] = best_index[0]; }
}
