/**
 * Continuous batching, as pure decisions: which sequences run in the next step and on how many
 * tokens each, over a paged KV cache (BlockPool). Sequences join and leave between steps. A step
 * holds at most `maxStepTokens` tokens and `maxSequences` sequences; decodes take one token
 * each, prefills take chunks of what remains of their prompt (and, after a preemption, of what
 * they had generated) within `maxPrefillTokens`. Candidates are taken in order of priority
 * (1 first), then arrival. When the KV cache cannot hold a candidate's next tokens, the last
 * running sequences in that order lose their blocks (preempted: they go back to waiting and are
 * recomputed from their tokens later, never failed); a candidate that still does not fit waits.
 * So the first sequence in order always progresses and every sequence finishes. A sequence past
 * its deadline leaves at the next step.
 *
 * The engine's step loop is schedule (this) → execute (the GPU) → commit (this again, with the
 * sampled tokens): vLLM's schedule / execute / update.
 */
import { BlockPool } from './block-pool.ts';

export interface SequenceSpec {
  readonly id: number;
  readonly prompt: readonly number[];
  /** Tokens to generate at most (already capped so that prompt + these fit the model). */
  readonly maxNewTokens: number;
  /** 1 (high) to 3 (low). */
  readonly priority: number;
  /** Absolute deadline in ms on the scheduler's clock; 0: none. */
  readonly deadlineMs: number;
  /** Token ids that end the sequence (the token itself is kept as its last). */
  readonly stopTokenIds: ReadonlySet<number>;
}

export interface SchedulerBudgets {
  /** Tokens one step computes at most, decodes and prefill chunks together. */
  readonly maxStepTokens: number;
  /** Prefill tokens one step computes at most. */
  readonly maxPrefillTokens: number;
  /** Sequences one step holds at most. */
  readonly maxSequences: number;
}

/** One sequence's part of a step: `tokens` at positions startPosition, startPosition + 1, ... */
export interface StepItem {
  readonly sequenceId: number;
  readonly startPosition: number;
  readonly tokens: readonly number[];
  /** KV blocks of the sequence, in position order (they cover every position computed). */
  readonly blockTable: readonly number[];
  /** True when the chunk ends the sequence's known tokens, so its last row is sampled. */
  readonly samples: boolean;
  /** How many tokens the sequence has generated before this step (the sampling step's index). */
  readonly generatedBefore: number;
}

export interface StepPlan {
  readonly items: readonly StepItem[];
  /** Sequences that lost their blocks in this decision. */
  readonly preempted: readonly number[];
  /** Sequences whose deadline passed; they have left the scheduler. */
  readonly expired: readonly number[];
}

export type FinishReason = 'length' | 'eos';

/** What a commit did to one sampled sequence. */
export interface Sampled {
  readonly sequenceId: number;
  readonly token: number;
  /** Set when the sequence finished with this token (it has left the scheduler). */
  readonly finish?: FinishReason;
  /** Times it was preempted. */
  readonly preemptions: number;
}

interface SequenceState {
  readonly spec: SequenceSpec;
  /** The order among equal priorities: arrival. */
  readonly arrival: number;
  /** Prompt, then generated tokens. */
  readonly tokens: number[];
  generated: number;
  /** Positions whose keys and values are in the cache. */
  computed: number;
  blocks: number[];
  running: boolean;
  preemptions: number;
}

export class Scheduler {
  private readonly pool: BlockPool;
  private readonly budgets: SchedulerBudgets;
  private readonly sequences = new Map<number, SequenceState>();
  private arrivals = 0;

  constructor(pool: BlockPool, budgets: SchedulerBudgets) {
    this.pool = pool;
    this.budgets = budgets;
  }

  get size(): number {
    return this.sequences.size;
  }

  has(id: number): boolean {
    return this.sequences.has(id);
  }

  /** Times `id` has been preempted so far (0 when unknown). */
  preemptionsOf(id: number): number {
    return this.sequences.get(id)?.preemptions ?? 0;
  }

  /** Prompt and generated tokens of `id`. */
  tokensOf(id: number): readonly number[] {
    return this.sequences.get(id)?.tokens ?? [];
  }

  /** A new sequence, waiting. Its id must be new; its prompt at least one token. */
  add(spec: SequenceSpec): void {
    if (this.sequences.has(spec.id)) throw new Error(`sequence ${spec.id} is already scheduled`);
    if (spec.prompt.length === 0) throw new Error(`sequence ${spec.id} has an empty prompt`);
    this.sequences.set(spec.id, {
      spec, arrival: this.arrivals++, tokens: [...spec.prompt], generated: 0, computed: 0, blocks: [], running: false, preemptions: 0,
    });
  }

  /** Removes a sequence (finished, cancelled, failed), freeing its blocks at once; false when unknown. */
  remove(id: number): boolean {
    const state = this.sequences.get(id);
    if (!state) return false;
    this.pool.release(state.blocks);
    this.sequences.delete(id);
    return true;
  }

  private preempt(state: SequenceState): void {
    this.pool.release(state.blocks);
    state.blocks = [];
    state.computed = 0;
    state.running = false;
    state.preemptions += 1;
  }

  /** The next step at time `nowMs` (see the file comment). Empty items: nothing can run. */
  schedule(nowMs: number): StepPlan {
    const expired: number[] = [];
    for (const [id, state] of this.sequences) {
      if (state.spec.deadlineMs > 0 && nowMs >= state.spec.deadlineMs) {
        expired.push(id);
        this.remove(id);
      }
    }
    const order = [...this.sequences.values()].sort((left, right) => left.spec.priority - right.spec.priority || left.arrival - right.arrival);
    const items: StepItem[] = [];
    const preempted: number[] = [];
    const scheduled = new Set<SequenceState>();
    const preemptedNow = new Set<SequenceState>();
    let stepTokens = this.budgets.maxStepTokens;
    let prefillTokens = Math.min(this.budgets.maxPrefillTokens, stepTokens);
    /**
     * The last running sequence after `after` in order, not yet scheduled and holding blocks
     * (with `lowerOnly`, of a strictly lower priority): the next to give its blocks up.
     */
    const victimAfter = (after: SequenceState, lowerOnly: boolean): SequenceState | undefined => {
      for (let index = order.length - 1; index >= 0 && order[index] !== after; index--) {
        const candidate = order[index];
        if (!candidate.running || scheduled.has(candidate) || candidate.blocks.length === 0) continue;
        if (!lowerOnly || candidate.spec.priority > after.spec.priority) return candidate;
      }
      return undefined;
    };
    const preemptNow = (state: SequenceState) => {
      this.preempt(state);
      preemptedNow.add(state);
      preempted.push(state.spec.id);
    };
    /** Cleared at the first waiting sequence that does not fit: later ones do not overtake it. */
    let admitting = true;
    for (const state of order) {
      if (items.length >= this.budgets.maxSequences || stepTokens === 0) break;
      // One preempted in this step waits for the next, and no later waiting one overtakes it.
      if (preemptedNow.has(state)) admitting = false;
      if (!state.running && !admitting) continue;
      const remaining = state.tokens.length - state.computed;
      const decode = state.running && remaining === 1;
      const wanted = decode ? 1 : Math.min(remaining, prefillTokens, stepTokens);
      if (wanted === 0) continue;
      /** Tokens the sequence can place with its blocks and the free ones. */
      const room = () => (state.blocks.length + this.pool.freeBlocks) * this.pool.blockTokens - state.computed;
      const makeRoom = (tokens: number, lowerOnly: boolean) => {
        for (let victim = victimAfter(state, lowerOnly); room() < tokens && victim; victim = victimAfter(state, lowerOnly)) preemptNow(victim);
      };
      // A running sequence takes blocks from any sequence after it, but only to go on at all (a
      // prefill chunk shrinks first); a waiting one takes them only from lower priorities.
      if (state.running) makeRoom(1, false);
      else makeRoom(wanted, true);
      const count = Math.min(wanted, room());
      if (count < 1) {
        // A running sequence that cannot go on even with the blocks of everyone after it: the
        // ones before it hold the cache, so it gives its blocks up too (recomputed later). A
        // waiting one keeps waiting, and no later waiting one overtakes it; running ones go on.
        if (state.running) {
          preemptNow(state);
          break;
        }
        admitting = false;
        continue;
      }
      const needed = this.pool.blocksFor(state.computed + count) - state.blocks.length;
      if (needed > 0) state.blocks.push(...this.pool.allocate(needed)!);
      state.running = true;
      scheduled.add(state);
      items.push({
        sequenceId: state.spec.id,
        startPosition: state.computed,
        tokens: state.tokens.slice(state.computed, state.computed + count),
        blockTable: [...state.blocks],
        samples: state.computed + count === state.tokens.length,
        generatedBefore: state.generated,
      });
      stepTokens -= count;
      if (!decode) prefillTokens -= count;
    }
    return { items, preempted, expired };
  }

  /**
   * Records an executed step: the chunks' keys and values are now cached, and each sampling
   * sequence takes its token from `tokens` (by sequence id). A sequence that stops (a stop
   * token, max_new_tokens, or the model's longest sequence `maxSequenceTokens`) leaves, its
   * blocks freed. Items of sequences removed meanwhile (cancelled) are skipped.
   */
  commit(plan: StepPlan, tokens: ReadonlyMap<number, number>, maxSequenceTokens: number): Sampled[] {
    const sampled: Sampled[] = [];
    for (const item of plan.items) {
      const state = this.sequences.get(item.sequenceId);
      if (!state || !state.running || state.computed !== item.startPosition) continue;
      state.computed += item.tokens.length;
      if (!item.samples) continue;
      const token = tokens.get(item.sequenceId);
      if (token === undefined) throw new Error(`no token was sampled for sequence ${item.sequenceId}`);
      state.tokens.push(token);
      state.generated += 1;
      let finish: FinishReason | undefined;
      if (state.spec.stopTokenIds.has(token)) finish = 'eos';
      else if (state.generated >= state.spec.maxNewTokens || state.tokens.length >= maxSequenceTokens) finish = 'length';
      if (finish) this.remove(item.sequenceId);
      sampled.push({ sequenceId: item.sequenceId, token, finish, preemptions: state.preemptions });
    }
    return sampled;
  }
}
