// Token embedding: x[t, :] = E[token(t), :] (+ P[position(t), :] with learned positions, GPT-2).
//
// The table may be split into chunks of vocabulary [vocab_start, vocab_end) (a table larger than
// one storage binding); one dispatch per chunk writes the rows of the tokens in its range. A
// TRANSPOSED table is the lm_head's [hidden, columns] matrix (tied embeddings), read down a
// column; otherwise rows of `hidden` values.
//
// Bindings (group 0):
//   @binding(0) token_info storage, read        array<vec4<u32>> (llm/step.wgsl)
//   @binding(1) table      storage, read        array<W>
//   @binding(2) positions  storage, read        array<W>, [max positions, hidden]; any buffer without HAS_POSITIONS
//   @binding(3) x          storage, read_write  array<f32>, [tokens, hidden]
//   @binding(4) params     uniform              Params below
//   @binding(5) step       uniform              Step
// Type alias: W. Override constants: HAS_POSITIONS, TRANSPOSED.
// Workgroup (64, 1, 1); grid (ceil(hidden / 64), tokens, 1). Prelude: llm/step.wgsl.

override HAS_POSITIONS: bool = false;
override TRANSPOSED: bool = false;

struct Params {
  hidden: u32,
  // Elements per row of the table: hidden, or the chunk's padded column count when TRANSPOSED.
  table_stride: u32,
  vocab_start: u32,
  vocab_end: u32,
}

@group(0) @binding(0) var<storage, read> token_info: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> table: array<W>;
@group(0) @binding(2) var<storage, read> positions: array<W>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
@group(0) @binding(5) var<uniform> step: Step;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let t = id.y;
  let k = id.x;
  if (t >= step.tokens || k >= params.hidden) { return; }
  let info = token_info[t];
  if (info.x < params.vocab_start || info.x >= params.vocab_end) { return; }
  let local = info.x - params.vocab_start;
  var value = f32(table[select(local * params.table_stride + k, k * params.table_stride + local, TRANSPOSED)]);
  if (HAS_POSITIONS) { value += f32(positions[info.y * params.hidden + k]); }
  x[t * params.hidden + k] = value;
}
