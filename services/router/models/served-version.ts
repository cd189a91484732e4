/**
 * One model version the router serves, with its lifecycle as one explicit state and the reason
 * it is in it (as Triton's model lifecycle keeps a ready state per version):
 *
 *   LOADING ──loaded──▶ READY ──no route needs it──▶ DRAINING ──idle──▶ UNLOADED
 *      │                  ▲                             │
 *      └──load failed─────┼─────────▶ UNLOADED          │
 *                         └────────routed again─────────┘
 *
 * READY and DRAINING versions take requests at once; a DRAINING one unloads once nothing is
 * queued, running or about to queue on it. An UNLOADED version is never used again: a request
 * still holding one asks the catalog for the version afresh, which loads it again.
 */
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, modelKeyOf, NexusError, type ModelKey } from '../../domain/index.ts';
import type { ModelSignature } from '../../onnx/index.ts';
import type { BatchingPolicy, ModelBatcher } from '../batching/index.ts';
import type { ResponseCache } from '../features/index.ts';

export const VersionState = {
  LOADING: 'LOADING',
  READY: 'READY',
  DRAINING: 'DRAINING',
  UNLOADED: 'UNLOADED',
} as const;
export type VersionState = (typeof VersionState)[keyof typeof VersionState];

const ALLOWED: Record<VersionState, readonly VersionState[]> = {
  [VersionState.LOADING]: [VersionState.READY, VersionState.UNLOADED],
  [VersionState.READY]: [VersionState.DRAINING],
  [VersionState.DRAINING]: [VersionState.READY, VersionState.UNLOADED],
  [VersionState.UNLOADED]: [],
};

/** Whether a version may go from `from` to `to`. */
export const canMove = (from: VersionState, to: VersionState): boolean => ALLOWED[from].includes(to);

export interface ServedVersionParts {
  record: ModelVersion;
  signature: ModelSignature;
  policy: BatchingPolicy;
  /** Priority of requests that name none (1 high … 3 low). */
  defaultPriority: number;
  batcher: ModelBatcher;
  /** Present when the model's config enables response caching. */
  cache: ResponseCache | undefined;
}

export class ServedVersion {
  readonly key: ModelKey;
  readonly version: ModelVersion;
  readonly signature: ModelSignature;
  readonly policy: BatchingPolicy;
  readonly defaultPriority: number;
  readonly batcher: ModelBatcher;
  readonly cache: ResponseCache | undefined;
  /** Requests holding this version between routing and being queued (see the catalog's hold). */
  holders = 0;
  private current: { state: VersionState; reason: string } = { state: VersionState.LOADING, reason: 'loading on the executors' };
  private readonly settled: Promise<void>;
  private wake: () => void = () => {};
  private loadError: NexusError | undefined;

  constructor(parts: ServedVersionParts) {
    this.key = modelKeyOf(parts.record);
    this.version = parts.record;
    this.signature = parts.signature;
    this.policy = parts.policy;
    this.defaultPriority = parts.defaultPriority;
    this.batcher = parts.batcher;
    this.cache = parts.cache;
    this.settled = new Promise((resolve) => { this.wake = resolve; });
  }

  get state(): VersionState {
    return this.current.state;
  }

  /** Why it is in its state, for logs and errors. */
  get reason(): string {
    return this.current.reason;
  }

  /** Requests may queue on it now, without waiting. */
  get servable(): boolean {
    return this.current.state === VersionState.READY || this.current.state === VersionState.DRAINING;
  }

  /** Resolves once loading ended (READY, or UNLOADED after a failed load); at once if it has. */
  whenLoadSettled(): Promise<void> {
    return this.settled;
  }

  /** Resolves once it is loaded; rejects with the load's error when loading failed. */
  async loaded(): Promise<void> {
    await this.settled;
    if (this.loadError) throw this.loadError;
  }

  /** Loading failed: UNLOADED for good, and `loaded()` rejects with `error`. */
  loadFailed(error: NexusError): void {
    this.loadError = error;
    this.moveTo(VersionState.UNLOADED, `load failed: ${error.message}`);
  }

  /** Moves to `state`; a move the lifecycle does not allow is a bug and throws INTERNAL. */
  moveTo(state: VersionState, reason: string): void {
    if (!canMove(this.current.state, state)) {
      throw new NexusError(ErrorCode.INTERNAL, `${this.key} cannot go from ${this.current.state} to ${state} (${reason})`);
    }
    this.current = { state, reason };
    if (state !== VersionState.LOADING) this.wake();
  }
}
