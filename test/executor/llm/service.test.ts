/**
 * Text generation through the executor's gRPC stream, with a real client: a checkpoint
 * directory version loads as a text-generation model (LoadedModel.task and KV capacity),
 * StartSequence streams SequenceEvents whose greedy tokens equal the float64 reference's,
 * CancelSequence ends a sequence "cancelled" and frees its blocks, a closed stream ends its
 * sequences, and bad sequences get a precise error event. The registry is an in-memory source
 * of the version record and its files (each fetched by its digest).
 */
import { createHash } from 'node:crypto';
import { credentials, Metadata } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/index.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { TextGenerationModel } from '../../../services/executor/llm/index.ts';
import type { ArtifactCache } from '../../../services/executor/service/artifact-cache.ts';
import { createExecutorService, ExecutorService } from '../../../services/executor/service/executor-service.ts';
import { ExecutorState } from '../../../services/executor/service/executor-state.ts';
import {
  ExecutorClient, type ExecutorMessage, type ModelLoadResult, type RouterMessage, type SequenceEvent,
} from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import type { ModelVersion } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { startGrpcServer, type RunningServer } from '../../../services/rpc/server.ts';
import { createLogger } from '../../../services/telemetry/logger.ts';
import { buildCheckpoint } from './checkpoints.ts';
import { startRequest } from './generation.ts';

const sequence = (...[prompt, count, overrides]: Parameters<typeof startRequest>) => startRequest(prompt, count, { modelName: 'gen', ...overrides });
import { referenceGreedy } from './reference.ts';

const logger = createLogger('executor');
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

const checkpoint = buildCheckpoint({ family: 'gpt2', hidden: 36, layers: 2, heads: 3, inter: 60, vocab: 89, maxPositions: 64, seed: 21 });
const blobs = new Map([...checkpoint.files.values()].map((bytes) => [sha256(bytes), bytes]));
const record: ModelVersion = {
  modelName: 'gen', version: 1, sha256: 'c'.repeat(64), sizeBytes: 10, format: 'safetensors', signature: undefined, lineage: undefined,
  tags: {}, creator: 'ada', createdAtUnixMs: 1, batching: undefined,
  files: [...checkpoint.files].map(([path, bytes]) => ({ path, sha256: sha256(bytes), sizeBytes: bytes.byteLength })),
};

let gpu: GpuContext;
let state: ExecutorState;
let server: RunningServer;
beforeAll(async () => {
  gpu = await openGpu();
  const artifacts = { fetch: async (digest: string) => blobs.get(digest)! } as unknown as ArtifactCache;
  state = new ExecutorState(gpu, artifacts, logger, {
    versions: async () => record, gpuBudgetBytes: 1 << 30, warmUpBudgetBytes: 1 << 20, kvBudgetBytes: 1 << 20,
  });
  server = await startGrpcServer({
    address: '127.0.0.1:0',
    services: [{
      name: 'nexus.executor.v1.Executor', protoFile: 'nexus/executor/v1/executor.proto', definition: ExecutorService,
      implementation: createExecutorService(state, { device: gpu.description, maxMessageBytes: 1 << 24 }, logger),
    }],
  });
});
afterAll(async () => {
  await server?.shutdown(0);
  gpu?.destroy();
});

/** A router's side of the stream: messages written as given, answers collected. */
class RouterStream {
  readonly events: SequenceEvent[] = [];
  readonly messages: ExecutorMessage[] = [];
  private readonly client = new ExecutorClient(server.address, credentials.createInsecure());
  private readonly call = this.client.connect(new Metadata());
  private waiters: Array<() => void> = [];

  constructor() {
    this.call.on('error', () => {});
    this.call.on('data', (message: ExecutorMessage) => {
      this.messages.push(message);
      if (message.sequenceEvent) this.events.push(message.sequenceEvent);
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  write(message: RouterMessage): void {
    this.call.write(message);
  }

  /** Resolves with the first message `pick` accepts, waiting for it. */
  async next<T>(pick: (message: ExecutorMessage) => T | undefined): Promise<T> {
    for (;;) {
      for (const message of this.messages) {
        const picked = pick(message);
        if (picked !== undefined) return picked;
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  load(): Promise<ModelLoadResult> {
    this.write({ loadModel: { requestId: 1, version: record, traceContext: {}, maxBatchSize: 0 } });
    return this.next((message) => message.modelLoadResult);
  }

  /** The sequence's events once its final one has arrived. */
  async finished(sequenceId: number): Promise<SequenceEvent[]> {
    await this.next((message) => (message.sequenceEvent?.sequenceId === sequenceId && message.sequenceEvent.finishReason ? true : undefined));
    return this.events.filter((event) => event.sequenceId === sequenceId);
  }

  close(): void {
    this.call.end();
    this.client.close();
  }
}

const generator = () => state.models.get('gen:1')!.resident!.model as TextGenerationModel;

describe('text generation over the executor stream', () => {
  it('loads a checkpoint directory as a text-generation model and streams the reference\'s greedy tokens', async () => {
    const router = new RouterStream();
    try {
      const loaded = await router.load();
      expect(loaded.errorCode).toBe(0);
      expect(loaded.model).toMatchObject({
        modelName: 'gen', version: 1, task: 'text-generation', precision: 'fp32', maxSequenceTokens: 64, kvBytesPerToken: 2 * 2 * 36 * 4,
      });
      expect(loaded.model!.kvCapacityTokens).toBeGreaterThanOrEqual(64);
      const prompt = [3, 14, 15, 9, 26, 5];
      router.write({ startSequence: sequence(prompt, 12, { sequenceId: 7 }) });
      const events = await router.finished(7);
      const tokens = events.flatMap((event) => event.tokens.map((token) => token.tokenId));
      expect(tokens).toEqual(referenceGreedy(checkpoint.config, checkpoint.tensors, prompt, 12).tokens);
      expect(events.at(-1)).toMatchObject({ finishReason: 'length', promptTokens: 6, generatedTokens: 12, errorCode: 0 });
      expect(events[0].firstTokenNs).toBeGreaterThan(0);
      expect(state.stats().models.map((memory) => memory.model?.task)).toEqual(['text-generation']);
    } finally {
      router.close();
    }
  });

  it('cancels a sequence at once, freeing its blocks, and refuses a duplicate id and a batch', async () => {
    const router = new RouterStream();
    try {
      await router.load();
      router.write({ startSequence: sequence([1, 2, 3], 0, { sequenceId: 1 }) });
      await router.next((message) => (message.sequenceEvent?.sequenceId === 1 ? true : undefined));
      router.write({ startSequence: sequence([4], 3, { sequenceId: 1 }) });
      await router.next((message) => (message.sequenceEvent?.errorCode === ErrorCode.INVALID_ARGUMENT ? true : undefined));
      router.write({ cancelSequence: { sequenceId: 1 } });
      const cancelled = await router.next((message) => (message.sequenceEvent?.finishReason === 'cancelled' ? message.sequenceEvent : undefined));
      expect(cancelled).toMatchObject({ sequenceId: 1, promptTokens: 3 });
      expect(cancelled.generatedTokens).toBeGreaterThan(0);
      const refused = router.events.find((event) => event.errorCode === ErrorCode.INVALID_ARGUMENT);
      expect(refused).toMatchObject({ sequenceId: 1, finishReason: 'error', errorMessage: expect.stringMatching(/sequence_id 1 is already running/) });
      expect(generator().kvBlocks.free).toBe(generator().kvBlocks.total);
      router.write({ executeBatch: { batchId: 5, modelName: 'gen', version: 1, inputs: [], deadlineUnixMs: 0, traceContext: {} } });
      const batch = await router.next((message) => message.batchResult);
      expect(batch).toMatchObject({ batchId: 5, errorCode: ErrorCode.FAILED_PRECONDITION, errorMessage: expect.stringMatching(/send StartSequence/) });
    } finally {
      router.close();
    }
  });

  it('answers a sequence for a model not loaded, or a malformed one, with one error event', async () => {
    const router = new RouterStream();
    try {
      router.write({ startSequence: sequence([1], 3, { sequenceId: 2, modelName: 'absent' }) });
      router.write({ startSequence: sequence([1, 999], 3, { sequenceId: 3, modelName: 'gen' }) });
      const [absent, malformed] = [await router.finished(2), await router.finished(3)];
      expect(absent).toEqual([expect.objectContaining({ finishReason: 'error', errorCode: ErrorCode.NOT_FOUND })]);
      expect(malformed).toEqual([expect.objectContaining({ finishReason: 'error', errorCode: ErrorCode.INVALID_ARGUMENT, errorMessage: expect.stringMatching(/prompt_token_ids\[1\] is 999/) })]);
    } finally {
      router.close();
    }
  });

  it('ends the sequences of a stream that closes', async () => {
    const router = new RouterStream();
    await router.load();
    router.write({ startSequence: sequence([5, 6, 7], 0, { sequenceId: 9 }) });
    await router.next((message) => (message.sequenceEvent?.sequenceId === 9 ? true : undefined));
    expect(generator().activeSequences).toBe(1);
    router.close();
    for (let wait = 0; wait < 100 && generator().activeSequences > 0; wait++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(generator().activeSequences).toBe(0);
    expect(generator().kvBlocks.free).toBe(generator().kvBlocks.total);
  });
});
