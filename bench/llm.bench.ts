/**
 * Text generation: our engine (paged KV cache, continuous batching, one submit per step) against
 * onnxruntime-node on the same adapter and the same random GPT-2 weights, run the way
 * transformers.js runs a decoder: an ONNX graph with past key/values inputs and present outputs
 * (built here with services/onnx/builder.ts), one session run per step, the logits read back and
 * argmax taken on the host, present fed back as the next step's past, sequences batched
 * statically (same prompt length, all decoding together). The WebGPU execution provider is used
 * when this onnxruntime-node build has it, else the CPU provider, and the table says which.
 *
 *   node bench/llm.bench.ts [--prompt 32] [--generate 32] [--batches 4,16,64] [--runs 3]
 *
 * Rows: time to first token (one sequence, the prompt's prefill and its first token), decode
 * tokens/s of one sequence (after its first token), aggregate tokens/s of N concurrent
 * sequences (every generated token over the wall time from start to the last token, prefill
 * included), and KV-cache bytes per token. Greedy decoding throughout; both engines' tokens for
 * the first prompt are compared and the note says whether they agree.
 */
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { openGpu } from '../services/executor/gpu/index.ts';
import { loadTextGenerationModel, type TextGenerationModel } from '../services/executor/llm/index.ts';
import { GraphBuilder } from '../services/onnx/index.ts';
import { buildCheckpoint, memoryFiles, type Checkpoint } from '../test/executor/llm/checkpoints.ts';
import { startRequest } from '../test/executor/llm/generation.ts';

const { values: args } = parseArgs({
  options: {
    prompt: { type: 'string', default: '32' },
    generate: { type: 'string', default: '32' },
    batches: { type: 'string', default: '4,16,64' },
    runs: { type: 'string', default: '3' },
  },
});
const PROMPT = Number(args.prompt);
const GENERATE = Number(args.generate);
const BATCHES = args.batches!.split(',').map(Number);
const RUNS = Number(args.runs);

/** A GPT-2 small enough for a software GPU: 4 layers of 256, 4 heads, a 2048-token vocabulary. */
const SPEC = { family: 'gpt2', hidden: 256, layers: 4, heads: 4, inter: 1024, vocab: 2048, maxPositions: 256, seed: 5 } as const;
const HEAD_DIM = SPEC.hidden / SPEC.heads;

const promptOf = (index: number) => Array.from({ length: PROMPT }, (_, position) => (index * 131 + position * 17 + 1) % SPEC.vocab);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

// ---- The GPT-2 graph with past key/values, as an exporter (optimum) writes it, built from the same weights.

function gpt2Onnx(checkpoint: Checkpoint): Uint8Array {
  const t = (name: string) => checkpoint.tensors.get(name)!;
  const { hidden, layers, heads, vocab } = SPEC;
  const graph = new GraphBuilder('gpt2_with_past')
    .input('input_ids', 'INT64', ['batch', 'sequence'])
    .input('position_ids', 'INT64', ['batch', 'sequence'])
    // The additive causal mask over past and new positions (transformers.js passes attention_mask; the exported graph builds this).
    .input('attention_bias', 'FP32', ['batch', 1, 'sequence', 'total'])
    .initializer('wte', 'FP32', [vocab, hidden], t('wte.weight'))
    .initializer('wpe', 'FP32', [SPEC.maxPositions, hidden], t('wpe.weight'))
    .initializer('heads_shape', 'INT64', [4], BigInt64Array.from([0n, 0n, BigInt(heads), BigInt(HEAD_DIM)]))
    .initializer('merge_shape', 'INT64', [3], BigInt64Array.from([0n, 0n, BigInt(hidden)]))
    .initializer('split_sizes', 'INT64', [3], BigInt64Array.from([BigInt(hidden), BigInt(hidden), BigInt(hidden)]))
    .initializer('scale', 'FP32', [], Float32Array.of(1 / Math.sqrt(HEAD_DIM)))
    .initializer('half', 'FP32', [], Float32Array.of(0.5))
    .initializer('one', 'FP32', [], Float32Array.of(1))
    .initializer('gelu_a', 'FP32', [], Float32Array.of(Math.sqrt(2 / Math.PI)))
    .initializer('gelu_b', 'FP32', [], Float32Array.of(0.044715))
    .initializer('three', 'FP32', [], Float32Array.of(3))
    .initializer('lm_head', 'FP32', [hidden, vocab], transpose(t('wte.weight'), vocab, hidden))
    .node('Gather', ['wte', 'input_ids'], ['tokens'], { axis: 0 })
    .node('Gather', ['wpe', 'position_ids'], ['positions'], { axis: 0 })
    .node('Add', ['tokens', 'positions'], ['x_0']);
  for (let layer = 0; layer < layers; layer++) {
    const l = `h.${layer}`;
    const n = (name: string) => `${name}_${layer}`;
    const add = (name: string, data: Float32Array, shape: number[]) => graph.initializer(n(name), 'FP32', shape, data);
    add('ln1_w', t(`${l}.ln_1.weight`), [hidden]); add('ln1_b', t(`${l}.ln_1.bias`), [hidden]);
    add('qkv_w', t(`${l}.attn.c_attn.weight`), [hidden, 3 * hidden]); add('qkv_b', t(`${l}.attn.c_attn.bias`), [3 * hidden]);
    add('proj_w', t(`${l}.attn.c_proj.weight`), [hidden, hidden]); add('proj_b', t(`${l}.attn.c_proj.bias`), [hidden]);
    add('ln2_w', t(`${l}.ln_2.weight`), [hidden]); add('ln2_b', t(`${l}.ln_2.bias`), [hidden]);
    add('fc_w', t(`${l}.mlp.c_fc.weight`), [hidden, SPEC.inter]); add('fc_b', t(`${l}.mlp.c_fc.bias`), [SPEC.inter]);
    add('down_w', t(`${l}.mlp.c_proj.weight`), [SPEC.inter, hidden]); add('down_b', t(`${l}.mlp.c_proj.bias`), [hidden]);
    graph.input(`past_key_${layer}`, 'FP32', ['batch', heads, 'past', HEAD_DIM])
      .input(`past_value_${layer}`, 'FP32', ['batch', heads, 'past', HEAD_DIM])
      .node('LayerNormalization', [`x_${layer}`, n('ln1_w'), n('ln1_b')], [n('ln1')], { axis: -1, epsilon: 1e-5 })
      .node('MatMul', [n('ln1'), n('qkv_w')], [n('qkv_raw')]).node('Add', [n('qkv_raw'), n('qkv_b')], [n('qkv')])
      .node('Split', [n('qkv'), 'split_sizes'], [n('q_flat'), n('k_flat'), n('v_flat')], { axis: -1 });
    for (const part of ['q', 'k', 'v']) {
      graph.node('Reshape', [n(`${part}_flat`), 'heads_shape'], [n(`${part}_heads`)])
        .node('Transpose', [n(`${part}_heads`)], [n(`${part}_new`)], { perm: [0, 2, 1, 3] });
    }
    graph.node('Concat', [`past_key_${layer}`, n('k_new')], [`present_key_${layer}`], { axis: 2 })
      .node('Concat', [`past_value_${layer}`, n('v_new')], [`present_value_${layer}`], { axis: 2 })
      .node('Transpose', [`present_key_${layer}`], [n('k_t')], { perm: [0, 1, 3, 2] })
      .node('MatMul', [n('q_new'), n('k_t')], [n('scores_raw')]).node('Mul', [n('scores_raw'), 'scale'], [n('scores_scaled')])
      .node('Add', [n('scores_scaled'), 'attention_bias'], [n('scores')])
      .node('Softmax', [n('scores')], [n('probs')], { axis: -1 })
      .node('MatMul', [n('probs'), `present_value_${layer}`], [n('context_heads')])
      .node('Transpose', [n('context_heads')], [n('context_t')], { perm: [0, 2, 1, 3] })
      .node('Reshape', [n('context_t'), 'merge_shape'], [n('context')])
      .node('MatMul', [n('context'), n('proj_w')], [n('attn_raw')]).node('Add', [n('attn_raw'), n('proj_b')], [n('attn')])
      .node('Add', [`x_${layer}`, n('attn')], [n('x_mid')])
      .node('LayerNormalization', [n('x_mid'), n('ln2_w'), n('ln2_b')], [n('ln2')], { axis: -1, epsilon: 1e-5 })
      .node('MatMul', [n('ln2'), n('fc_w')], [n('fc_raw')]).node('Add', [n('fc_raw'), n('fc_b')], [n('fc')])
      // gelu_new(h) = h / 2 * (1 + tanh(sqrt(2 / pi) * (h + 0.044715 h^3)))
      .node('Pow', [n('fc'), 'three'], [n('cube')]).node('Mul', [n('cube'), 'gelu_b'], [n('cube_b')])
      .node('Add', [n('fc'), n('cube_b')], [n('inner')]).node('Mul', [n('inner'), 'gelu_a'], [n('inner_a')])
      .node('Tanh', [n('inner_a')], [n('tanh')]).node('Add', [n('tanh'), 'one'], [n('tanh_1')])
      .node('Mul', [n('fc'), n('tanh_1')], [n('gelu_2')]).node('Mul', [n('gelu_2'), 'half'], [n('gelu')])
      .node('MatMul', [n('gelu'), n('down_w')], [n('down_raw')]).node('Add', [n('down_raw'), n('down_b')], [n('down')])
      .node('Add', [n('x_mid'), n('down')], [`x_${layer + 1}`])
      .output(`present_key_${layer}`, 'FP32', ['batch', heads, 'total', HEAD_DIM])
      .output(`present_value_${layer}`, 'FP32', ['batch', heads, 'total', HEAD_DIM]);
  }
  graph.initializer('lnf_w', 'FP32', [hidden], t('ln_f.weight')).initializer('lnf_b', 'FP32', [hidden], t('ln_f.bias'))
    .node('LayerNormalization', [`x_${layers}`, 'lnf_w', 'lnf_b'], ['final'], { axis: -1, epsilon: 1e-5 })
    .node('MatMul', ['final', 'lm_head'], ['logits'])
    .output('logits', 'FP32', ['batch', 'sequence', vocab]);
  return graph.toBytes({ opset: 17 });
}

function transpose(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let row = 0; row < rows; row++) for (let col = 0; col < cols; col++) out[col * rows + row] = values[row * cols + col];
  return out;
}

// ---- onnxruntime, driven as transformers.js drives a decoder.

interface OrtEngine {
  session: ort.InferenceSession;
  provider: string;
  /** Present outputs stay on the GPU between steps (transformers.js's preferredOutputLocation). */
  gpuCache: boolean;
}

async function ortEngine(onnx: Uint8Array, notes: string[]): Promise<OrtEngine> {
  const presentNames = Array.from({ length: SPEC.layers }, (_, layer) => [`present_key_${layer}`, `present_value_${layer}`]).flat();
  try {
    const session = await ort.InferenceSession.create(onnx, {
      executionProviders: ['webgpu'], graphOptimizationLevel: 'all',
      preferredOutputLocation: Object.fromEntries(presentNames.map((name) => [name, 'gpu-buffer' as const])),
    });
    return { session, provider: 'WebGPU EP', gpuCache: true };
  } catch (error) {
    notes.push(`onnxruntime-node ${ort.env.versions.common}: the WebGPU EP with present outputs on the GPU failed (${(error as Error).message.split('\n')[0]}).`);
  }
  try {
    const session = await ort.InferenceSession.create(onnx, { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' });
    return { session, provider: 'WebGPU EP', gpuCache: false };
  } catch (error) {
    notes.push(`onnxruntime-node ${ort.env.versions.common}: no WebGPU EP (${(error as Error).message.split('\n')[0]}); the ORT column is its CPU EP.`);
  }
  return { session: await ort.InferenceSession.create(onnx, { executionProviders: ['cpu'], graphOptimizationLevel: 'all' }), provider: 'CPU EP', gpuCache: false };
}

const int64 = (values: number[], shape: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, BigInt), shape);

/**
 * Greedy generation of GENERATE tokens for `prompts` (one static batch) on onnxruntime: the
 * time of the first token and of each later one, and the tokens of the first prompt.
 */
async function ortGenerate(engine: OrtEngine, prompts: number[][]): Promise<{ firstMs: number; lastMs: number; tokens: number[] }> {
  const batch = prompts.length;
  const started = performance.now();
  let past: Record<string, ort.Tensor> = {};
  for (let layer = 0; layer < SPEC.layers; layer++) {
    for (const kind of ['key', 'value']) past[`past_${kind}_${layer}`] = new ort.Tensor('float32', new Float32Array(0), [batch, SPEC.heads, 0, HEAD_DIM]);
  }
  let inputs = prompts;
  let pastLength = 0;
  const tokens: number[] = [];
  let firstMs = 0;
  for (let step = 0; step < GENERATE; step++) {
    const length = inputs[0].length;
    const total = pastLength + length;
    const bias = new Float32Array(batch * length * total);
    for (let b = 0; b < batch; b++) {
      for (let i = 0; i < length; i++) for (let j = pastLength + i + 1; j < total; j++) bias[(b * length + i) * total + j] = -1e9;
    }
    const outputs = await engine.session.run({
      input_ids: int64(inputs.flat(), [batch, length]),
      position_ids: int64(inputs.flatMap(() => Array.from({ length }, (_, i) => pastLength + i)), [batch, length]),
      attention_bias: new ort.Tensor('float32', bias, [batch, 1, length, total]),
      ...past,
    });
    const logits = outputs.logits.data as Float32Array;
    const next = Array.from({ length: batch }, (_, b) => {
      const row = logits.subarray(((b + 1) * length - 1) * SPEC.vocab, (b + 1) * length * SPEC.vocab);
      let best = 0;
      for (let id = 1; id < row.length; id++) if (row[id] > row[best]) best = id;
      return best;
    });
    tokens.push(next[0]);
    if (step === 0) firstMs = performance.now() - started;
    for (const tensor of Object.values(past)) tensor.dispose();
    past = {};
    for (let layer = 0; layer < SPEC.layers; layer++) {
      for (const kind of ['key', 'value']) past[`past_${kind}_${layer}`] = outputs[`present_${kind}_${layer}`];
    }
    outputs.logits.dispose();
    inputs = next.map((token) => [token]);
    pastLength = total;
  }
  for (const tensor of Object.values(past)) tensor.dispose();
  return { firstMs, lastMs: performance.now() - started, tokens };
}

// ---- Ours.

/** Greedy generation for `prompts` started together: first and last token times, the first prompt's tokens. */
function oursGenerate(model: TextGenerationModel, prompts: number[][]): Promise<{ firstMs: number; lastMs: number; tokens: number[] }> {
  const started = performance.now();
  let firstMs = 0;
  let pending = prompts.length;
  const tokens: number[] = [];
  return new Promise((resolve, reject) => {
    prompts.forEach((prompt, index) => {
      try {
        model.start(startRequest(prompt, GENERATE), (event) => {
          if (index === 0) tokens.push(...event.tokens.map((token) => token.tokenId));
          if (index === 0 && event.firstTokenNs > 0) firstMs = performance.now() - started;
          if (event.finishReason === 'error') reject(new Error(event.errorMessage));
          if (event.finishReason && --pending === 0) resolve({ firstMs, lastMs: performance.now() - started, tokens });
        });
      } catch (error) {
        reject(error);
      }
    });
  });
}

// ---- The run.

const notes: string[] = [];
const checkpoint = buildCheckpoint({ ...SPEC });
const gpu = await openGpu();
const largest = Math.max(1, ...BATCHES);
const kvBytesPerToken = 2 * SPEC.layers * SPEC.hidden * 4;
console.error('loading our engine');
const ours = await loadTextGenerationModel(gpu, memoryFiles(checkpoint.files), {
  precision: 'fp32', kvBudgetBytes: largest * (PROMPT + GENERATE + 16) * kvBytesPerToken,
  limits: { maxSequences: largest, maxStepTokens: Math.max(512, largest), maxPrefillTokens: 512 },
});
console.error('building the ONNX graph and the onnxruntime session');
const ortSession = await ortEngine(gpt2Onnx(checkpoint), notes);

type Generate = (prompts: number[][]) => Promise<{ firstMs: number; lastMs: number; tokens: number[] }>;
const engines: Array<[string, Generate]> = [['ours', (prompts) => oursGenerate(ours, prompts)], ['ort', (prompts) => ortGenerate(ortSession, prompts)]];
const results = new Map<string, Map<string, number>>(engines.map(([name]) => [name, new Map()]));
const firstTokens = new Map<string, number[]>();
for (const [name, generate] of engines) {
  console.error(`${name}: warm-up`);
  firstTokens.set(name, (await generate([promptOf(0)])).tokens);
  await generate(Array.from({ length: Math.min(4, largest) }, (_, index) => promptOf(index)));
}
for (const [name, generate] of engines) {
  const single = [];
  for (let run = 0; run < RUNS; run++) single.push(await generate([promptOf(run)]));
  results.get(name)!.set('ttft', median(single.map((run) => run.firstMs)));
  results.get(name)!.set('decode', median(single.map((run) => ((GENERATE - 1) * 1000) / (run.lastMs - run.firstMs))));
  for (const batch of BATCHES) {
    console.error(`${name}: ${batch} sequences`);
    const prompts = Array.from({ length: batch }, (_, index) => promptOf(index));
    const runs = [];
    for (let run = 0; run < Math.max(1, Math.ceil(RUNS / 2)); run++) runs.push(await generate(prompts));
    results.get(name)!.set(`batch ${batch}`, median(runs.map((run) => (batch * GENERATE * 1000) / run.lastMs)));
  }
}

const provider = ortSession.provider;
const cell = (value: number | undefined, digits = 1) => (value === undefined ? '—' : value.toFixed(digits));
const row = (label: string, key: string, unit: 'ms' | 'tok/s') => {
  const mine = results.get('ours')!.get(key)!;
  const theirs = results.get('ort')!.get(key)!;
  const advantage = unit === 'ms' ? theirs / mine : mine / theirs;
  console.log(`| ${label} | ${cell(mine)} | ${cell(theirs)} | ${advantage.toFixed(2)}× |`);
};
console.log(`| GPT-2 ${SPEC.layers}×${SPEC.hidden}, vocab ${SPEC.vocab}, prompt ${PROMPT}, ${GENERATE} new tokens, fp32 | ours | ORT ${provider} | ours vs ORT |`);
console.log('|---|---:|---:|---:|');
row(`time to first token, ms (prompt ${PROMPT})`, 'ttft', 'ms');
row('decode tokens/s, 1 sequence', 'decode', 'tok/s');
for (const batch of BATCHES) row(`aggregate tokens/s, ${batch} concurrent sequences`, `batch ${batch}`, 'tok/s');
console.log(`| KV cache bytes per token | ${ours.capacity.kvBytesPerToken} | ${kvBytesPerToken} | 1.00× |`);
console.log('');
const agree = JSON.stringify(firstTokens.get('ours')) === JSON.stringify(firstTokens.get('ort'));
notes.push(
  `Adapter: ${gpu.description}. onnxruntime-node ${ort.env.versions.common}, ${provider}${ortSession.gpuCache ? ', present outputs kept on the GPU' : ', present outputs read back each step'}.`,
  `Greedy tokens of the first prompt ${agree ? 'agree' : 'DIFFER'} between the two engines.`,
  `KV: ours reserves ${ours.capacity.kvCapacityTokens} positions in ${ours.capacity.kvCapacityTokens / 16} blocks of 16 at load and writes each new position in place; `
  + 'ORT concatenates the whole past with each step\'s keys and values into new present tensors (the same bytes per token, copied every step, '
  + 'past and present alive together).',
  `Medians of ${RUNS} runs (time to first token, decode) and of ${Math.max(1, Math.ceil(RUNS / 2))} (aggregate), after a warm-up; `
  + 'ORT batches statically (all prompts the same length), ours schedules every sequence on its own.',
);
for (const note of notes) console.log(`- ${note}`);
ours.dispose();
await ortSession.session.release();
gpu.destroy();
process.exit(0);
