// Causal attention of every token of a step over its sequence's paged KV cache: prefill chunks
// and decodes alike, since each token attends to positions 0..its own (the step wrote its
// chunk's keys and values first, llm/rope_cache.wgsl). Grouped-query attention: q head h reads
// kv head h / group.
//
//   out[t, h, :] = sum_j softmax_j(scale * q . k_j) v_j,  j = 0 .. position(t)
//
// One workgroup of 64 lanes per (q head, token). Keys are taken 64 at a time (one per lane):
// each lane scores its key, the chunk's max and sum come from a tree in workgroup memory, and
// the running max m and denominator l are rescaled chunk by chunk (online softmax), so any
// context length runs in fixed memory. For the weighted sum each lane owns the head dims
// lane, lane + 64, ... (DIM_SLOTS of them). The chunking depends on positions only, so a
// token's result is the same however its sequence's blocks are placed or what it is batched with.
//
// Bindings (group 0):
//   @binding(0) token_info   storage, read        array<vec4<u32>> (llm/step.wgsl)
//   @binding(1) block_tables storage, read        array<u32>
//   @binding(2) qkv          storage, read        array<f32>, q in the first q_heads * head_dim columns
//   @binding(3) k_cache      storage, read        array<KV>
//   @binding(4) v_cache      storage, read        array<KV>
//   @binding(5) out          storage, read_write  array<f32>, [tokens, q_heads * head_dim]
//   @binding(6) params       uniform              Params below
//   @binding(7) step         uniform              Step
// Type alias: KV. Override constant: BLOCK_TOKENS. Unrolled: DIM_SLOTS = ceil(head_dim / 64).
// Workgroup (64, 1, 1); grid (q_heads, tokens, 1). Prelude: llm/step.wgsl.

override BLOCK_TOKENS: u32 = 16u;
const LANES: u32 = 64u;
// Below any score; exp(NEG_BIG - finite) is 0, and unlike -inf it never makes a NaN.
const NEG_BIG: f32 = -3.0e38;

struct Params {
  q_heads: u32,
  kv_heads: u32,
  head_dim: u32,
  qkv_stride: u32,
  blocks_per_seq: u32,
  group: u32,
  scale: f32,
  _pad: u32,
}

@group(0) @binding(0) var<storage, read> token_info: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> block_tables: array<u32>;
@group(0) @binding(2) var<storage, read> qkv: array<f32>;
@group(0) @binding(3) var<storage, read> k_cache: array<KV>;
@group(0) @binding(4) var<storage, read> v_cache: array<KV>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;
@group(0) @binding(7) var<uniform> step: Step;

var<workgroup> q_row: array<f32, 256>;
var<workgroup> weights: array<f32, LANES>;
var<workgroup> partial: array<f32, LANES>;
var<workgroup> shared_info: vec4<u32>;

fn workgroup_reduce(lane: u32, value: f32, is_max: bool) -> f32 {
  partial[lane] = value;
  for (var half = LANES / 2u; half > 0u; half = half / 2u) {
    workgroupBarrier();
    if (lane < half) {
      let other = partial[lane + half];
      partial[lane] = select(partial[lane] + other, max(partial[lane], other), is_max);
    }
  }
  workgroupBarrier();
  let total = partial[0];
  workgroupBarrier();
  return total;
}

// The first element of position j's key (or value) row in the cache.
fn cache_row(sequence: u32, kv_head: u32, j: u32) -> u32 {
  let block = block_tables[sequence * params.blocks_per_seq + j / BLOCK_TOKENS];
  return ((block * params.kv_heads + kv_head) * BLOCK_TOKENS + j % BLOCK_TOKENS) * params.head_dim;
}

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(workgroup_id) workgroup: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let head = workgroup.x;
  let t = workgroup.y;
  if (t >= step.tokens) { return; }
  if (lane == 0u) { shared_info = token_info[t]; }
  // The same for the whole workgroup, so the loops with barriers below are uniform.
  let info = workgroupUniformLoad(&shared_info);
  let context = info.y + 1u;
  let sequence = info.z;
  let kv_head = head / params.group;
  let dims = params.head_dim;
  for (var d = lane; d < dims; d += LANES) {
    q_row[d] = qkv[t * params.qkv_stride + head * dims + d] * params.scale;
  }
  workgroupBarrier();

  var m = NEG_BIG;
  var l = 0.0;
  //#for a in DIM_SLOTS
  var acc_{a} = 0.0;
  //#end
  for (var start = 0u; start < context; start += LANES) {
    let j = start + lane;
    var score = NEG_BIG;
    if (j < context) {
      let row = cache_row(sequence, kv_head, j);
      var dot = 0.0;
      for (var d = 0u; d < dims; d++) { dot = fma(q_row[d], f32(k_cache[row + d]), dot); }
      score = dot;
    }
    let m_new = max(m, workgroup_reduce(lane, score, true));
    let p = select(0.0, exp(score - m_new), j < context);
    weights[lane] = p;
    let correction = exp(m - m_new);
    l = l * correction + workgroup_reduce(lane, p, false);
    let count = min(LANES, context - start);
    //#for a in DIM_SLOTS
    {
      let d = lane + {a}u * LANES;
      var sum = 0.0;
      if (d < dims) {
        for (var i = 0u; i < count; i++) { sum = fma(weights[i], f32(v_cache[cache_row(sequence, kv_head, start + i) + d]), sum); }
      }
      acc_{a} = acc_{a} * correction + sum;
    }
    //#end
    m = m_new;
    // Every lane has read this chunk's weights before the next chunk writes them.
    workgroupBarrier();
  }
  //#for a in DIM_SLOTS
  {
    let d = lane + {a}u * LANES;
    if (d < dims) { out[t * params.q_heads * dims + head * dims + d] = acc_{a} / l; }
  }
  //#end
}
