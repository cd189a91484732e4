/**
 * Continuous batching on the GPU with small random models: sequences of different lengths
 * joining and leaving give exactly the tokens each gives alone, attention over scattered KV
 * blocks equals attention over contiguous ones bit for bit, cancellation frees blocks at once,
 * a KV cache too small for everyone preempts and recomputes without changing any token, seeded
 * sampling repeats, and stop tokens, deadlines, log-probabilities and bad requests behave.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/index.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { readCheckpointConfig, readCheckpointTensors } from '../../../services/executor/llm/checkpoint.ts';
import { DecoderEngine } from '../../../services/executor/llm/decoder-engine.ts';
import { engineLayout } from '../../../services/executor/llm/engine-layout.ts';
import { hostWeightsOf } from '../../../services/executor/llm/host-weights.ts';
import type { TextGenerationModel } from '../../../services/executor/llm/index.ts';
import { buildCheckpoint, memoryFiles, type Checkpoint } from './checkpoints.ts';
import { loadCheckpoint, runSequence, startRequest } from './generation.ts';

const LLAMA = buildCheckpoint({ family: 'llama', hidden: 72, layers: 2, heads: 3, kvHeads: 1, inter: 92, vocab: 101, maxPositions: 128, seed: 11 });
const GPT2 = buildCheckpoint({ family: 'gpt2', hidden: 36, layers: 2, heads: 3, inter: 60, vocab: 89, maxPositions: 128, seed: 12 });

let gpu: GpuContext;
let llama: TextGenerationModel;
let gpt2: TextGenerationModel;
beforeAll(async () => {
  gpu = await openGpu();
  [llama, gpt2] = await Promise.all([loadCheckpoint(gpu, LLAMA), loadCheckpoint(gpu, GPT2)]);
});
afterAll(() => {
  llama?.dispose();
  gpt2?.dispose();
  gpu?.destroy();
});

/** Sixteen prompts of 1 to 46 tokens, each with its own number of tokens to generate. */
const PROMPTS = Array.from({ length: 16 }, (_, index) => ({
  prompt: Array.from({ length: 1 + index * 3 }, (_, position) => (index * 31 + position * 7) % 80),
  generate: 4 + ((index * 5) % 17),
}));

describe('continuous batching', () => {
  it.each([['Llama (GQA, rotary)', () => llama], ['GPT-2', () => gpt2]])('%s: 16 sequences joining and leaving give the tokens each gives alone', async (_name, modelOf) => {
    const model = modelOf();
    const alone: number[][] = [];
    for (const { prompt, generate } of PROMPTS) alone.push((await runSequence(model, startRequest(prompt, generate))).tokens);
    // Eight start together; each of the other eight starts when one of the first has its third token.
    const results: Array<Promise<number[]>> = [];
    const late = PROMPTS.slice(8);
    const startLate = () => {
      const next = late.shift();
      if (next) results.push(runSequence(model, startRequest(next.prompt, next.generate)).then((finished) => finished.tokens));
    };
    for (const { prompt, generate } of PROMPTS.slice(0, 8)) {
      let seen = 0;
      results.push(new Promise((resolve) => {
        const tokens: number[] = [];
        model.start(startRequest(prompt, generate), (event) => {
          tokens.push(...event.tokens.map((token) => token.tokenId));
          seen += event.tokens.length;
          if (seen === 3) startLate();
          if (event.finishReason) resolve(tokens);
        });
      }));
    }
    while (results.length < 16) await new Promise((resolve) => setTimeout(resolve, 5));
    const together = await Promise.all(results);
    // results are in start order: the first eight, then the late ones in the order they started.
    expect(together.slice(0, 8)).toEqual(alone.slice(0, 8));
    expect(together.slice(8)).toEqual(alone.slice(8));
    expect(model.kvBlocks.free).toBe(model.kvBlocks.total);
    expect(model.activeSequences).toBe(0);
  });

  it('attention over scattered KV blocks equals attention over contiguous blocks, across block boundaries', async () => {
    const checkpoint: Checkpoint = LLAMA;
    const { config } = await readCheckpointConfig(memoryFiles(checkpoint.files));
    const limits = { maxStepTokens: 64, maxSequences: 4, maxBindingBytes: gpu.device.limits.maxStorageBufferBindingSize, weightChunkBytes: gpu.device.limits.maxStorageBufferBindingSize };
    const layout = engineLayout(config, 'fp32', 1 << 20, limits);
    const engine = await DecoderEngine.create(gpu, config, layout, limits, hostWeightsOf(config, await readCheckpointTensors(memoryFiles(checkpoint.files))), 'simd');
    try {
      const prompt = Array.from({ length: 37 }, (_, position) => (position * 11) % 100);
      const run = async (blockTable: number[]) => {
        const rows: Float32Array[] = [];
        const [prefill] = await engine.step([{ startPosition: 0, tokens: prompt, blockTable, output: 'logits' }]);
        rows.push(prefill.logits!);
        let token = prefill.token!;
        for (let position = prompt.length; position < 50; position++) {
          const [decoded] = await engine.step([{ startPosition: position, tokens: [token], blockTable, output: 'logits' }]);
          rows.push(decoded.logits!);
          token = decoded.token!;
        }
        return rows;
      };
      const contiguous = await run([0, 1, 2, 3]);
      const scattered = await run([9, 4, 13, 6]);
      expect(scattered).toEqual(contiguous);
    } finally {
      engine.dispose();
    }
  });
});

describe('KV blocks', () => {
  it('cancelling frees a sequence\'s blocks at once and ends it "cancelled"', async () => {
    const total = llama.kvBlocks.total;
    const ended = await new Promise<{ free: number; events: string[] }>((resolve) => {
      const events: string[] = [];
      let free = -1;
      const handle = llama.start(startRequest(Array.from({ length: 40 }, (_, i) => i), 60), (event) => {
        events.push(event.finishReason || `${event.tokens.length} token`);
        if (events.length === 2) {
          handle.cancel();
          free = llama.kvBlocks.free;
        }
        if (event.finishReason) setTimeout(() => resolve({ free, events }), 20);
      });
    });
    expect(ended.free).toBe(total);
    expect(ended.events).toEqual(['1 token', '1 token', 'cancelled']);
    expect(llama.kvBlocks.free).toBe(total);
  });

  it('a cache too small for everyone preempts and recomputes, and every sequence keeps its tokens', async () => {
    // 6 blocks of 16 positions: each sequence needs up to 4, so the six cannot all run together.
    const small = await loadCheckpoint(gpu, LLAMA, { kvBudgetBytes: 6 * 16 * LLAMA_KV_BYTES_PER_TOKEN });
    try {
      expect(small.kvBlocks.total).toBe(6);
      const work = PROMPTS.slice(6, 12).map(({ prompt }) => ({ prompt, generate: 64 - prompt.length }));
      const alone: number[][] = [];
      for (const { prompt, generate } of work) alone.push((await runSequence(llama, startRequest(prompt, generate))).tokens);
      const together = await Promise.all(work.map(({ prompt, generate }) => runSequence(small, startRequest(prompt, generate))));
      expect(together.map((finished) => finished.tokens)).toEqual(alone);
      expect(together.every((finished) => finished.last.finishReason === 'length')).toBe(true);
      expect(together.reduce((sum, finished) => sum + finished.last.preemptions, 0)).toBeGreaterThan(0);
      expect(small.kvBlocks.free).toBe(6);
    } finally {
      small.dispose();
    }
  });
});

/** Keys and values of one position in all 2 layers: 2 × 2 × 1 kv head × 24 dims × 4 bytes. */
const LLAMA_KV_BYTES_PER_TOKEN = 2 * 2 * 24 * 4;

describe('sequences', () => {
  it('repeats seeded sampling, concurrently or not, and another seed differs', async () => {
    const sampled = (seed: number) => startRequest([3, 1, 4, 1, 5], 24, { sampling: { temperature: 1.3, topK: 40, topP: 0.95, repetitionPenalty: 1.1, frequencyPenalty: 0.2, presencePenalty: 0.1, seed } });
    const first = await runSequence(gpt2, sampled(7));
    const [again, other] = await Promise.all([runSequence(gpt2, sampled(7)), runSequence(gpt2, sampled(8)), runSequence(gpt2, startRequest([9, 9], 30))]);
    expect(again.tokens).toEqual(first.tokens);
    expect(other.tokens).not.toEqual(first.tokens);
  });

  it('ends at a stop token, keeping it as the last token', async () => {
    const free = await runSequence(llama, startRequest([10, 20, 30], 12));
    const stop = free.tokens[4];
    const stopped = await runSequence(llama, startRequest([10, 20, 30], 12, { stopTokenIds: [stop] }));
    expect(stopped.tokens).toEqual(free.tokens.slice(0, free.tokens.indexOf(stop) + 1));
    expect(stopped.last).toMatchObject({ finishReason: 'eos', promptTokens: 3, generatedTokens: stopped.tokens.length });
    expect(stopped.events[0].firstTokenNs).toBeGreaterThan(0);
    expect(stopped.events[1].firstTokenNs).toBe(0);
  });

  it('returns log-probabilities of greedy tokens (chosen on the host, the same as the GPU\'s argmax)', async () => {
    const plain = await runSequence(llama, startRequest([7, 8, 9], 6));
    const withLogprobs = await runSequence(llama, startRequest([7, 8, 9], 6, { logprobs: true, topLogprobs: 3 }));
    expect(withLogprobs.tokens).toEqual(plain.tokens);
    for (const token of withLogprobs.events.flatMap((event) => event.tokens)) {
      expect(token.logprob).toBeLessThan(0);
      expect(token.topLogprobs).toHaveLength(3);
      expect(token.topLogprobs[0]).toEqual({ tokenId: token.tokenId, logprob: token.logprob });
      expect(token.topLogprobs[1].logprob).toBeLessThanOrEqual(token.topLogprobs[0].logprob);
    }
  });

  it('ends a sequence past its deadline DEADLINE_EXCEEDED', async () => {
    const late = await runSequence(llama, startRequest([1, 2, 3], 10, { deadlineUnixMs: Date.now() - 1 }));
    expect(late.last).toMatchObject({ finishReason: 'error', errorCode: ErrorCode.DEADLINE_EXCEEDED });
  });

  it('refuses malformed requests and one the KV cache could never hold', () => {
    const refused: Array<[Parameters<typeof startRequest>, number, RegExp]> = [
      [[[], 5], ErrorCode.INVALID_ARGUMENT, /prompt_token_ids is empty/],
      [[[1, 500], 5], ErrorCode.INVALID_ARGUMENT, /prompt_token_ids\[1\] is 500/],
      [[[1], 5, { stopTokenIds: [101] }], ErrorCode.INVALID_ARGUMENT, /stop_token_ids\[0\] is 101/],
      [[new Array(128).fill(1), 5], ErrorCode.INVALID_ARGUMENT, /has 128 tokens; the model takes 128/],
      [[[1], 5, { priority: 4 }], ErrorCode.INVALID_ARGUMENT, /priority is 4/],
      [[[1], 5, { sampling: { temperature: -1, topK: 0, topP: 0, repetitionPenalty: 0, frequencyPenalty: 0, presencePenalty: 0 } }], ErrorCode.INVALID_ARGUMENT, /temperature/],
    ];
    for (const [args, code, message] of refused) {
      expect(() => llama.start(startRequest(...args), () => {})).toThrow(expect.objectContaining({ code, message: expect.stringMatching(message) }));
    }
    expect(llama.activeSequences).toBe(0);
  });

  it('a KV cache smaller than the model\'s positions bounds the longest sequence; a full queue is RESOURCE_EXHAUSTED', async () => {
    const tiny = await loadCheckpoint(gpu, GPT2, { kvBudgetBytes: 2 * 16 * 2 * 2 * 36 * 4, limits: { maxQueuedSequences: 2 } });
    try {
      expect(tiny.capacity).toMatchObject({ kvCapacityTokens: 32, maxSequenceTokens: 32 });
      expect(() => tiny.start(startRequest(new Array(32).fill(1), 1), () => {})).toThrow(/has 32 tokens; the model takes 32/);
      const longest = runSequence(tiny, startRequest([1, 2, 3], 0));
      const second = runSequence(tiny, startRequest([4], 2));
      expect(() => tiny.start(startRequest([5], 2), () => {})).toThrow(expect.objectContaining({ code: ErrorCode.RESOURCE_EXHAUSTED }));
      expect((await longest).last).toMatchObject({ finishReason: 'length', generatedTokens: 29 });
      expect((await second).last).toMatchObject({ finishReason: 'length', generatedTokens: 2 });
    } finally {
      tiny.dispose();
    }
  });
});
