enable subgroups;
// Causal attention over the paged KV cache (the computation of llm/paged_attention.wgsl) for GPUs
// that are a CPU's SIMD units (lavapipe), where each workgroup barrier costs more than the
// arithmetic around it: no workgroup memory and no barrier in the loop. One 8-lane subgroup per
// (q head, token); the lanes split the head dimension (lane l owns dims 4 (8a + l) .. +3 for each
// slot a), so for every key each lane takes a partial q . k over its dims, subgroupAdd gives
// every lane the whole score, and the online softmax (running max m, denominator l) and the
// weighted sum of values run on uniform scalars, each lane updating its own dims.
//
//   out[t, h, :] = sum_j softmax_j(scale * q . k_j) v_j,  j = 0 .. position(t)
//
// Keys are visited in position order, one at a time, whatever blocks hold them, so a token's
// result does not depend on its sequence's block placement or on what it is batched with.
//
// Bindings and parameters are those of llm/paged_attention.wgsl, with q, the caches and the
// output read as vec4s (head_dim a multiple of 4). Unrolled: DIM4 = ceil(head_dim / 32).
// Workgroup (8, 1, 1); grid (q_heads, tokens, 1). Prelude: llm/step.wgsl.

override BLOCK_TOKENS: u32 = 16u;
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
@group(0) @binding(2) var<storage, read> qkv: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> k_cache: array<vec4<KV>>;
@group(0) @binding(4) var<storage, read> v_cache: array<vec4<KV>>;
@group(0) @binding(5) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(6) var<uniform> params: Params;
@group(0) @binding(7) var<uniform> step: Step;

var<workgroup> shared_info: vec4<u32>;

@compute @workgroup_size(8, 1, 1)
fn main(@builtin(workgroup_id) workgroup: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let head = workgroup.x;
  let t = workgroup.y;
  if (t >= step.tokens) { return; }
  if (lane == 0u) { shared_info = token_info[t]; }
  // The same for the whole workgroup, so the subgroup operations below are in uniform control flow.
  let info = workgroupUniformLoad(&shared_info);
  let context = info.y + 1u;
  let sequence = info.z;
  let kv_head = head / params.group;
  let dims4 = params.head_dim / 4u;
  let q_base = (t * params.qkv_stride + head * params.head_dim) / 4u;

  // Slots past the head's end read its last vec4 and weigh it by a zero q.
  //#for a in DIM4
  let slot_{a} = {a}u * 8u + lane;
  let load_{a} = min(slot_{a}, dims4 - 1u);
  let q_{a} = select(vec4<f32>(), qkv[q_base + load_{a}] * params.scale, slot_{a} < dims4);
  var acc_{a} = vec4<f32>();
  //#end

  var m = NEG_BIG;
  var l = 0.0;
  for (var j = 0u; j < context; j++) {
    let block = block_tables[sequence * params.blocks_per_seq + j / BLOCK_TOKENS];
    let row = ((block * params.kv_heads + kv_head) * BLOCK_TOKENS + j % BLOCK_TOKENS) * dims4;
    var partial = 0.0;
    //#for a in DIM4
    partial += dot(q_{a}, vec4<f32>(k_cache[row + load_{a}]));
    //#end
    let score = subgroupAdd(partial);
    let m_new = max(m, score);
    let correction = exp(m - m_new);
    let p = exp(score - m_new);
    l = l * correction + p;
    //#for a in DIM4
    acc_{a} = acc_{a} * correction + p * vec4<f32>(v_cache[row + load_{a}]);
    //#end
    m = m_new;
  }
  let out_base = (t * params.q_heads * params.head_dim + head * params.head_dim) / 4u;
  //#for a in DIM4
  if (slot_{a} < dims4) { out[out_base + slot_{a}] = acc_{a} / l; }
  //#end
}
