/**
 * A loaded causal language model serving sequences: StartSequence in, a SequenceEvent per step
 * that produced tokens out. The step loop is schedule (scheduler.ts, pure) → execute (one GPU
 * step, decoder-engine.ts) → update (sampling, the scheduler's commit, events). It runs while
 * any sequence is waiting or running; sequences join and leave between steps. Cancelling frees
 * a sequence's KV blocks at once (a step in flight keeps computing its rows, whose results are
 * dropped, and the freed blocks are handed out only by the next step's schedule).
 */
import { randomBytes } from 'node:crypto';
import { ErrorCode, invalidArgument, NexusError } from '../../domain/index.ts';
import type { GeneratedToken, SequenceEvent, StartSequence } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import type { Precision } from '../runtime/index.ts';
import { BlockPool } from './block-pool.ts';
import type { DecoderEngine, EngineItem } from './decoder-engine.ts';
import { argmaxSuffices, chooseToken, samplingSettingsOf, type ChosenToken, type SamplingSettings } from './sampling.ts';
import { Scheduler, type SchedulerBudgets, type StepPlan } from './scheduler.ts';

/** What LoadedModel says of a text-generation model. */
export interface TextGenerationCapacity {
  readonly task: 'text-generation';
  readonly kvCapacityTokens: number;
  readonly maxSequenceTokens: number;
  readonly kvBytesPerToken: number;
}

/** A running sequence, as its stream holds it. */
export interface SequenceHandle {
  /** Ends it "cancelled" and frees its blocks; nothing happens once it has ended. */
  cancel(): void;
  /** Ends it "error" with `error`'s code and message. */
  fail(error: NexusError): void;
}

export interface GenerationOptions extends SchedulerBudgets {
  /** Sequences waiting or running at once; more are refused RESOURCE_EXHAUSTED. */
  readonly maxQueuedSequences: number;
  /** Tests: called with every sampled row's logits (which are then read back for every sequence). */
  readonly onLogits?: (sequenceId: number, step: number, logits: Float32Array) => void;
}

interface SequenceRecord {
  readonly id: number;
  readonly sequenceId: number;
  readonly emit: (event: SequenceEvent) => void;
  readonly settings: SamplingSettings;
  readonly promptLength: number;
  readonly startedNs: bigint;
  firstSent: boolean;
  generated: number;
}

/** Priority 0 (unset) runs as the middle level, as the router's requests do. */
const DEFAULT_PRIORITY = 2;

export class TextGenerationModel {
  readonly precision: Precision;
  readonly weightBytes: number;
  /** What the model holds on the GPU: weights, KV cache and step scratch. */
  readonly gpuBytes: number;
  /** Kernels a step dispatches at most (a step with nothing to sample skips the last few). */
  readonly stepCount: number;
  readonly capacity: TextGenerationCapacity;
  private readonly engine: DecoderEngine;
  private readonly vocabSize: number;
  private readonly pool: BlockPool;
  private readonly scheduler: Scheduler;
  private readonly options: GenerationOptions;
  private readonly records = new Map<number, SequenceRecord>();
  private nextId = 1;
  private looping = false;
  private disposed = false;

  constructor(engine: DecoderEngine, vocabSize: number, precision: Precision, options: GenerationOptions) {
    const { layout } = engine;
    this.engine = engine;
    this.vocabSize = vocabSize;
    this.precision = precision;
    this.weightBytes = layout.weightBytes;
    this.gpuBytes = layout.gpuBytes;
    this.stepCount = engine.dispatchesPerStep;
    this.options = options;
    this.pool = new BlockPool(layout.kvBlocks);
    this.scheduler = new Scheduler(this.pool, options);
    this.capacity = {
      task: 'text-generation', kvCapacityTokens: layout.kvBlocks * this.pool.blockTokens, maxSequenceTokens: layout.maxSequenceTokens, kvBytesPerToken: layout.kvBytesPerToken,
    };
  }

  /** KV blocks free now, and in all. */
  get kvBlocks(): { free: number; total: number } {
    return { free: this.pool.freeBlocks, total: this.pool.totalBlocks };
  }

  /** Sequences waiting or running. */
  get activeSequences(): number {
    return this.records.size;
  }

  /**
   * Starts a sequence whose events go to `emit` (the last one has a finish_reason). Throws
   * INVALID_ARGUMENT for a malformed request (naming the field) and RESOURCE_EXHAUSTED when
   * too many sequences are queued. The longest sequence (capacity.maxSequenceTokens) fits the
   * KV cache alone, so any sequence accepted finishes, preempted and recomputed if need be.
   */
  start(request: StartSequence, emit: (event: SequenceEvent) => void): SequenceHandle {
    if (this.disposed) throw new NexusError(ErrorCode.UNAVAILABLE, 'the model was unloaded');
    const prompt = request.promptTokenIds;
    const { maxSequenceTokens } = this.capacity;
    if (prompt.length === 0) throw invalidArgument('start_sequence.prompt_token_ids is empty; a sequence needs at least one prompt token');
    const outside = (ids: readonly number[]) => ids.findIndex((id) => !Number.isInteger(id) || id < 0 || id >= this.vocabSize);
    const badPrompt = outside(prompt);
    if (badPrompt >= 0) throw invalidArgument(`start_sequence.prompt_token_ids[${badPrompt}] is ${prompt[badPrompt]}; token ids are below the vocabulary size ${this.vocabSize}`);
    const badStop = outside(request.stopTokenIds);
    if (badStop >= 0) throw invalidArgument(`start_sequence.stop_token_ids[${badStop}] is ${request.stopTokenIds[badStop]}; token ids are below the vocabulary size ${this.vocabSize}`);
    if (prompt.length >= maxSequenceTokens) {
      throw invalidArgument(`start_sequence.prompt_token_ids has ${prompt.length} tokens; the model takes ${maxSequenceTokens} in all, prompt and generated`);
    }
    if (request.priority > 3) throw invalidArgument(`start_sequence.priority is ${request.priority}; use 1 (high) to 3 (low), or 0 for the default`);
    const settings = samplingSettingsOf(request.sampling, request.logprobs, request.topLogprobs, randomBytes(8).readBigUInt64LE(0));
    const room = maxSequenceTokens - prompt.length;
    const maxNewTokens = request.maxNewTokens === 0 ? room : Math.min(request.maxNewTokens, room);
    if (this.records.size >= this.options.maxQueuedSequences) {
      throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED, `${this.records.size} sequences are waiting or running on this model, the most it takes; try again later`);
    }
    const id = this.nextId++;
    const record: SequenceRecord = {
      id, sequenceId: request.sequenceId, emit, settings, promptLength: prompt.length, startedNs: process.hrtime.bigint(), firstSent: false, generated: 0,
    };
    this.records.set(id, record);
    this.scheduler.add({
      id, prompt, maxNewTokens, priority: request.priority || DEFAULT_PRIORITY, deadlineMs: request.deadlineUnixMs, stopTokenIds: new Set(request.stopTokenIds),
    });
    this.wake();
    return {
      cancel: () => this.end(id, { finishReason: 'cancelled' }),
      fail: (error) => this.end(id, { finishReason: 'error', errorCode: error.code, errorMessage: error.message }),
    };
  }

  /** Ends every sequence UNAVAILABLE and frees the GPU memory once the running step is done. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const id of [...this.records.keys()]) {
      this.end(id, { finishReason: 'error', errorCode: ErrorCode.UNAVAILABLE, errorMessage: 'the model was unloaded from this executor' });
    }
    this.engine.dispose();
  }

  private end(id: number, finish: Pick<SequenceEvent, 'finishReason'> & Partial<SequenceEvent>): void {
    const record = this.records.get(id);
    if (!record) return;
    const preemptions = this.scheduler.preemptionsOf(id);
    this.scheduler.remove(id);
    this.records.delete(id);
    this.send(record, [], { ...finish, promptTokens: record.promptLength, generatedTokens: record.generated, preemptions });
  }

  private send(record: SequenceRecord, tokens: GeneratedToken[], fields: Partial<SequenceEvent>): void {
    const firstTokenNs = !record.firstSent && tokens.length > 0 ? Number(process.hrtime.bigint() - record.startedNs) : 0;
    if (tokens.length > 0) record.firstSent = true;
    record.emit({
      sequenceId: record.sequenceId, tokens, finishReason: '', errorCode: 0, errorMessage: '', promptTokens: 0, generatedTokens: 0,
      firstTokenNs, preemptions: this.scheduler.preemptionsOf(record.id), ...fields,
    });
  }

  private wake(): void {
    if (this.looping) return;
    this.looping = true;
    void this.loop().finally(() => {
      this.looping = false;
    });
  }

  private async loop(): Promise<void> {
    while (!this.disposed && this.scheduler.size > 0) {
      const plan = this.scheduler.schedule(Date.now());
      for (const id of plan.expired) {
        const record = this.records.get(id);
        this.records.delete(id);
        if (record) this.send(record, [], { finishReason: 'error', errorCode: ErrorCode.DEADLINE_EXCEEDED, errorMessage: 'the sequence deadline passed', promptTokens: record.promptLength, generatedTokens: record.generated });
      }
      if (plan.items.length === 0) {
        // Nothing fits although sequences wait: only possible if one alone exceeds the cache,
        // which start() refuses. Fail them rather than spin.
        for (const id of [...this.records.keys()]) this.end(id, { finishReason: 'error', errorCode: ErrorCode.INTERNAL, errorMessage: 'the scheduler could not place the sequence' });
        return;
      }
      await this.runStep(plan);
      // Let cancellations and new sequences arrive between steps.
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private outputOf(record: SequenceRecord | undefined): EngineItem['output'] {
    if (!record) return 'none';
    return argmaxSuffices(record.settings) && !this.options.onLogits ? 'argmax' : 'logits';
  }

  private async runStep(plan: StepPlan): Promise<void> {
    const items = plan.items.map((item): EngineItem => ({ ...item, output: item.samples ? this.outputOf(this.records.get(item.sequenceId)) : 'none' }));
    let results;
    try {
      results = await this.engine.step(items);
    } catch (error) {
      const coded = NexusError.from(error);
      for (const item of plan.items) this.end(item.sequenceId, { finishReason: 'error', errorCode: coded.code, errorMessage: coded.message });
      return;
    }
    const tokens = new Map<number, number>();
    const chosen = new Map<number, ChosenToken>();
    plan.items.forEach((item, index) => {
      const record = this.records.get(item.sequenceId);
      const result = results[index];
      if (!item.samples || !record) return;
      if (result.logits) this.options.onLogits?.(item.sequenceId, item.generatedBefore, result.logits);
      if (argmaxSuffices(record.settings)) {
        tokens.set(item.sequenceId, result.token!);
        return;
      }
      const choice = chooseToken(result.logits!, record.settings, this.scheduler.tokensOf(item.sequenceId), record.promptLength, item.generatedBefore);
      tokens.set(item.sequenceId, choice.token);
      chosen.set(item.sequenceId, choice);
    });
    for (const sampled of this.scheduler.commit(plan, tokens, this.capacity.maxSequenceTokens)) {
      const record = this.records.get(sampled.sequenceId)!;
      const choice = chosen.get(sampled.sequenceId);
      record.generated += 1;
      const token: GeneratedToken = {
        tokenId: sampled.token, logprob: choice?.logprob ?? 0,
        topLogprobs: (choice?.top ?? []).map((alternative) => ({ tokenId: alternative.token, logprob: alternative.logprob })),
      };
      if (!sampled.finish) {
        this.send(record, [token], {});
        continue;
      }
      this.records.delete(sampled.sequenceId);
      this.send(record, [token], {
        finishReason: sampled.finish, promptTokens: record.promptLength, generatedTokens: record.generated, preemptions: sampled.preemptions,
      });
    }
  }
}
