// After the fused q/k/v projection: rotary embedding of q (in place) and k, and k and v written
// into the paged KV cache, for every token of the step.
//
//   rotate_half (Hugging Face's Llama): for i < d/2, with (cos, sin) of position * inv_freq[i],
//     x'[i]       = x[i] cos - x[i + d/2] sin
//     x'[i + d/2] = x[i + d/2] cos + x[i] sin
//   cache slot of position p: block = block_table[p / BLOCK_TOKENS], slot = p % BLOCK_TOKENS,
//     element ((block * kv_heads + head) * BLOCK_TOKENS + slot) * head_dim + i
//
// The (cos, sin) table is computed on the host in float64 for every position, so long
// positions lose no accuracy to f32 trigonometry. Without ROPE (GPT-2) k is copied as is.
//
// Bindings (group 0):
//   @binding(0) token_info   storage, read        array<vec4<u32>> (llm/step.wgsl)
//   @binding(1) block_tables storage, read        array<u32>, blocks_per_seq per step sequence
//   @binding(2) qkv          storage, read_write  array<f32>, rows of qkv_stride: q heads, k heads, v heads
//   @binding(3) rope         storage, read        array<vec2<f32>>, [max positions, head_dim / 2]; any buffer without ROPE
//   @binding(4) k_cache      storage, read_write  array<KV>, one layer's keys
//   @binding(5) v_cache      storage, read_write  array<KV>, one layer's values
//   @binding(6) params       uniform              Params below
//   @binding(7) step         uniform              Step
// Type alias: KV (f32 or f16). Override constants: ROPE, BLOCK_TOKENS.
// Workgroup (64, 1, 1); grid (ceil(units / 64), tokens, 1), units = q pairs + k pairs (or k
// elements) + v elements. Prelude: llm/step.wgsl.

override ROPE: bool = false;
override BLOCK_TOKENS: u32 = 16u;

struct Params {
  q_heads: u32,
  kv_heads: u32,
  head_dim: u32,
  qkv_stride: u32,
  blocks_per_seq: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<storage, read> token_info: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> block_tables: array<u32>;
@group(0) @binding(2) var<storage, read_write> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> rope: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read_write> k_cache: array<KV>;
@group(0) @binding(5) var<storage, read_write> v_cache: array<KV>;
@group(0) @binding(6) var<uniform> params: Params;
@group(0) @binding(7) var<uniform> step: Step;

fn rotated(pair: vec2<f32>, position: u32, i: u32) -> vec2<f32> {
  let angle = rope[position * (params.head_dim / 2u) + i];
  return vec2<f32>(pair.x * angle.x - pair.y * angle.y, pair.y * angle.x + pair.x * angle.y);
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let t = id.y;
  if (t >= step.tokens) { return; }
  let info = token_info[t];
  let position = info.y;
  let half = params.head_dim / 2u;
  let row = t * params.qkv_stride;
  let q_units = select(0u, params.q_heads * half, ROPE);
  let k_units = select(params.kv_heads * params.head_dim, params.kv_heads * half, ROPE);
  let v_units = params.kv_heads * params.head_dim;
  var e = id.x;
  if (e >= q_units + k_units + v_units) { return; }
  let block = block_tables[info.z * params.blocks_per_seq + position / BLOCK_TOKENS];
  let slot = position % BLOCK_TOKENS;

  if (e < q_units) {
    let head = e / half;
    let i = e % half;
    let base = row + head * params.head_dim;
    let q = rotated(vec2<f32>(qkv[base + i], qkv[base + i + half]), position, i);
    qkv[base + i] = q.x;
    qkv[base + i + half] = q.y;
    return;
  }
  e -= q_units;
  let k_row = row + params.q_heads * params.head_dim;
  if (e < k_units) {
    if (ROPE) {
      let head = e / half;
      let i = e % half;
      let source = k_row + head * params.head_dim;
      let k = rotated(vec2<f32>(qkv[source + i], qkv[source + i + half]), position, i);
      let cached = ((block * params.kv_heads + head) * BLOCK_TOKENS + slot) * params.head_dim;
      k_cache[cached + i] = KV(k.x);
      k_cache[cached + i + half] = KV(k.y);
    } else {
      let head = e / params.head_dim;
      let d = e % params.head_dim;
      k_cache[((block * params.kv_heads + head) * BLOCK_TOKENS + slot) * params.head_dim + d] = KV(qkv[k_row + e]);
    }
    return;
  }
  e -= k_units;
  let head = e / params.head_dim;
  let d = e % params.head_dim;
  let v_row = k_row + params.kv_heads * params.head_dim;
  v_cache[((block * params.kv_heads + head) * BLOCK_TOKENS + slot) * params.head_dim + d] = KV(qkv[v_row + e]);
}
