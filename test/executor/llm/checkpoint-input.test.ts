/**
 * A checkpoint is untrusted input, checked without a GPU: safetensors headers (length, JSON,
 * dtypes, shapes, offsets that tile the data exactly), sharded indexes, config.json fields and
 * the architectures and options the engine refuses, and tensors of the wrong shape or unknown
 * to the architecture.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/index.ts';
import { readCheckpointConfig, readCheckpointTensors } from '../../../services/executor/llm/checkpoint.ts';
import { hostWeightsOf } from '../../../services/executor/llm/host-weights.ts';
import { readModelConfig } from '../../../services/executor/llm/model-config.ts';
import { parseSafetensors, tensorAsFloat32 } from '../../../services/executor/llm/safetensors.ts';
import { buildCheckpoint, memoryFiles, safetensorsBytes } from './checkpoints.ts';

const encoder = new TextEncoder();

/** A file with a given header text and data bytes. */
function rawFile(header: string, dataBytes = 0): Uint8Array {
  const out = new Uint8Array(8 + header.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(encoder.encode(header), 8);
  return out;
}

const header = (tensors: Record<string, unknown>) => JSON.stringify(tensors);

describe('safetensors headers', () => {
  it('reads a well-formed file, F32, F16 and BF16 alike', () => {
    const f16 = new Uint8Array(new Float16Array([1.5, -2]).buffer);
    const bf16 = new Uint8Array(new Uint16Array([0x3fc0, 0xc000]).buffer);
    const bytes = safetensorsBytes([
      { name: 'a', dtype: 'F32', shape: [2], bytes: new Uint8Array(new Float32Array([1, 2]).buffer) },
      { name: 'b', dtype: 'F16', shape: [2], bytes: f16 },
      { name: 'c', dtype: 'BF16', shape: [1, 2], bytes: bf16 },
    ]);
    const file = parseSafetensors('model.safetensors', bytes);
    expect([...file.tensors.keys()]).toEqual(['a', 'b', 'c']);
    expect(file.metadata.get('format')).toBe('pt');
    expect([...tensorAsFloat32(file, file.tensors.get('a')!)]).toEqual([1, 2]);
    expect([...tensorAsFloat32(file, file.tensors.get('b')!)]).toEqual([1.5, -2]);
    expect([...tensorAsFloat32(file, file.tensors.get('c')!)]).toEqual([1.5, -2]);
  });

  const HOSTILE: Array<[string, Uint8Array, RegExp]> = [
    ['shorter than its length field', new Uint8Array(5), /fewer than the 8/],
    ['a header longer than the file', (() => { const b = rawFile('{}'); new DataView(b.buffer).setBigUint64(0, 1000n, true); return b; })(), /past the file/],
    ['a header length of 2^63', (() => { const b = rawFile('{}'); new DataView(b.buffer).setBigUint64(0, 1n << 63n, true); return b; })(), /over the/],
    ['a header that is not JSON', rawFile('{nope'), /not UTF-8 JSON/],
    ['a header that is an array', rawFile('[1, 2]'), /does not start with '\{'/],
    ['an unknown dtype', rawFile(header({ a: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }), 16), /dtype "F128"/],
    ['a negative dimension', rawFile(header({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }), 4), /dimension -1/],
    ['a fractional dimension', rawFile(header({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 4] } }), 4), /dimension 1.5/],
    ['offsets that disagree with the shape', rawFile(header({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }), 4), /needs 8 bytes/],
    ['offsets past the data', rawFile(header({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }), 4), /past the 4 bytes/],
    ['overlapping tensors', rawFile(header({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }), 8), /overlaps/],
    ['a gap between tensors', rawFile(header({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }), 8), /bytes 0 to 4 belong to no tensor/],
    ['trailing bytes', rawFile(header({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }), 8), /bytes 4 to 8 belong to no tensor/],
    ['an unknown field', rawFile(header({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4], extra: 1 } }), 4), /unknown field 'extra'/],
    ['a non-string metadata value', rawFile(header({ __metadata__: { a: 1 } })), /__metadata__ 'a' is not a string/],
    ['a shape whose bytes overflow', rawFile(header({ a: { dtype: 'F64', shape: [2 ** 40, 2 ** 20], data_offsets: [0, 8] } }), 8), /too large/],
  ];

  it.each(HOSTILE)('refuses %s as INVALID_ARGUMENT naming the file', (_name, bytes, message) => {
    expect(() => parseSafetensors('model.safetensors', bytes)).toThrow(message);
    try {
      parseSafetensors('model.safetensors', bytes);
    } catch (error) {
      expect(error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining("'model.safetensors'") });
    }
  });

  it('refuses integer tensors as weights', () => {
    const file = parseSafetensors('w.safetensors', safetensorsBytes([{ name: 'i', dtype: 'I32', shape: [1], bytes: new Uint8Array(4) }]));
    expect(() => tensorAsFloat32(file, file.tensors.get('i')!)).toThrow(/I32; model weights must be F32, F16 or BF16/);
  });
});

const GPT2 = { family: 'gpt2', hidden: 8, layers: 1, heads: 2, inter: 12, vocab: 11, maxPositions: 8, seed: 9 } as const;
const LLAMA = { family: 'llama', hidden: 8, layers: 1, heads: 2, kvHeads: 1, inter: 12, vocab: 11, maxPositions: 8, seed: 9 } as const;
const configBytes = (config: Record<string, unknown>) => encoder.encode(JSON.stringify(config));

describe('config.json', () => {
  it('reads GPT-2 and Llama configs with their defaults', () => {
    expect(readModelConfig(configBytes(buildCheckpoint(GPT2).config))).toMatchObject({
      family: 'gpt2', hiddenSize: 8, heads: 2, kvHeads: 2, headDim: 4, intermediateSize: 12, tiedEmbeddings: true, qkvBias: true,
    });
    expect(readModelConfig(configBytes(buildCheckpoint(LLAMA).config))).toMatchObject({
      family: 'llama', kvHeads: 1, headDim: 4, ropeTheta: 10000, ropeScaling: { type: 'default' }, qkvBias: false, tiedEmbeddings: false,
    });
  });

  const llama = buildCheckpoint(LLAMA).config;
  const REFUSED: Array<[string, Record<string, unknown>, number, RegExp]> = [
    ['an unknown architecture', { ...llama, architectures: ['MambaForCausalLM'] }, ErrorCode.FAILED_PRECONDITION, /architecture 'MambaForCausalLM' is not supported/],
    ['no architectures', { ...llama, architectures: undefined }, ErrorCode.INVALID_ARGUMENT, /'architectures'/],
    ['yarn rope scaling', { ...llama, rope_scaling: { rope_type: 'yarn', factor: 4 } }, ErrorCode.FAILED_PRECONDITION, /rope_scaling.rope_type = "yarn"/],
    ['a sliding window', { ...llama, architectures: ['MistralForCausalLM'], sliding_window: 4 }, ErrorCode.FAILED_PRECONDITION, /sliding_window = 4/],
    ['another activation', { ...llama, hidden_act: 'gelu' }, ErrorCode.FAILED_PRECONDITION, /hidden_act = "gelu"/],
    ['partial rotary embeddings', { ...llama, partial_rotary_factor: 0.5 }, ErrorCode.FAILED_PRECONDITION, /partial_rotary_factor/],
    ['heads not a multiple of kv heads', { ...llama, num_key_value_heads: 3 }, ErrorCode.INVALID_ARGUMENT, /not a multiple of num_key_value_heads/],
    ['a string where a number goes', { ...llama, hidden_size: '8' }, ErrorCode.INVALID_ARGUMENT, /'hidden_size' is "8"/],
    ['a head too wide for the attention kernel', { ...llama, head_dim: 512 }, ErrorCode.FAILED_PRECONDITION, /head dimension is 512/],
    ['an absurd vocabulary', { ...llama, vocab_size: 2 ** 40 }, ErrorCode.FAILED_PRECONDITION, /'vocab_size' is 1099511627776/],
    ['GPT-2 with exact gelu', { ...buildCheckpoint(GPT2).config, activation_function: 'gelu' }, ErrorCode.FAILED_PRECONDITION, /activation_function = "gelu"/],
  ];

  it.each(REFUSED)('refuses %s', (_name, config, code, message) => {
    expect(() => readModelConfig(configBytes(config))).toThrow(message);
    expect(() => readModelConfig(configBytes(config))).toThrow(expect.objectContaining({ code }));
  });

  it('takes dynamic rope scaling as the default rotation within max_position_embeddings', () => {
    expect(readModelConfig(configBytes({ ...llama, rope_scaling: { type: 'dynamic', factor: 2 } })).ropeScaling).toEqual({ type: 'default' });
  });
});

describe('checkpoint files', () => {
  it('reads sharded weights through their index, and refuses an index that lies', async () => {
    const checkpoint = buildCheckpoint({ ...LLAMA, shards: 3 });
    const tensors = await readCheckpointTensors(memoryFiles(checkpoint.files));
    expect([...tensors.keys()].sort()).toEqual([...checkpoint.tensors.keys()].sort());
    const lying = new Map(checkpoint.files);
    const index = JSON.parse(new TextDecoder().decode(lying.get('model.safetensors.index.json')));
    const [first] = Object.keys(index.weight_map);
    index.weight_map[first] = index.weight_map[first] === 'model-00001-of-00003.safetensors' ? 'model-00002-of-00003.safetensors' : 'model-00001-of-00003.safetensors';
    lying.set('model.safetensors.index.json', encoder.encode(JSON.stringify(index)));
    await expect(readCheckpointTensors(memoryFiles(lying))).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/maps/) });
  });

  it('needs config.json and safetensors weights', async () => {
    const checkpoint = buildCheckpoint(GPT2);
    const noConfig = new Map([...checkpoint.files].filter(([path]) => path !== 'config.json'));
    await expect(readCheckpointConfig(memoryFiles(noConfig))).rejects.toMatchObject({ code: ErrorCode.FAILED_PRECONDITION });
    const noWeights = new Map([...checkpoint.files].filter(([path]) => path !== 'model.safetensors'));
    await expect(readCheckpointTensors(memoryFiles(noWeights))).rejects.toMatchObject({ code: ErrorCode.FAILED_PRECONDITION, message: expect.stringMatching(/safetensors/) });
  });

  it('refuses an eos_token_id outside the vocabulary', async () => {
    const files = new Map(buildCheckpoint(GPT2).files);
    files.set('generation_config.json', encoder.encode(JSON.stringify({ eos_token_id: [3, 50] })));
    await expect(readCheckpointConfig(memoryFiles(files))).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/eos_token_id 50/) });
  });

  it('refuses a tensor of the wrong shape, a missing one, and one the architecture does not have', async () => {
    const checkpoint = buildCheckpoint(LLAMA);
    const config = readModelConfig(checkpoint.files.get('config.json')!);
    const entries = await readCheckpointTensors(memoryFiles(checkpoint.files));
    expect(() => hostWeightsOf({ ...config, intermediateSize: 13 }, entries)).toThrow(/has shape \[12, 8\]; the config implies \[13, 8\]/);
    const missing = new Map(entries);
    missing.delete('model.norm.weight');
    expect(() => hostWeightsOf(config, missing)).toThrow(/no tensor 'model.norm.weight'/);
    const extra = new Map(entries);
    extra.set('model.layers.0.self_attn.q_norm.weight', entries.get('model.norm.weight')!);
    expect(() => hostWeightsOf(config, extra)).toThrow(expect.objectContaining({ code: ErrorCode.FAILED_PRECONDITION, message: expect.stringMatching(/q_norm/) }));
  });
});
