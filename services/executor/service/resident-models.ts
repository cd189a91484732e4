/**
 * The compiled models on the GPU, keyed by what their bytes and precision are (sha256 and
 * precision), so versions storing identical bytes share one compiled copy. Each is
 * reference-counted by the holds on it (one per acquire, so a version loaded, unloaded and
 * loaded again while one build runs holds it twice and must release twice), and together they stay within the GPU memory
 * budget: a model that would not fit evicts the least recently used idle ones first.
 */
import { ErrorCode, NexusError, type ModelKey } from '../../domain/index.ts';
import type { TextGenerationModel } from '../llm/index.ts';
import type { CompiledModel } from '../runtime/index.ts';
import { evictionsToFit } from './gpu-budget.ts';

/** One compiled model and the versions sharing it. */
export interface ResidentModel {
  /** "sha256:precision". */
  readonly key: string;
  /** An ONNX model (batches) or a text-generation model (sequences). */
  readonly model: CompiledModel | TextGenerationModel;
  /** Holds on it by version (one per acquire not yet released); it is disposed when the last one goes. */
  readonly versions: Map<ModelKey, number>;
  /** GPU bytes it holds: weights plus its largest warm-up batch's activations (an estimate until warmed). */
  bytes: number;
  /** Batches running (or being warmed up) on it now; only an idle model can be evicted. */
  busy: number;
  lastUsedMs: number;
  /** Largest batch size warmed up so far. */
  warmedUpTo: number;
}

export class ResidentModels {
  private readonly residents = new Map<string, ResidentModel>();
  /** Loads in progress by key, so concurrent versions of identical bytes compile once. */
  private readonly loading = new Map<string, Promise<ResidentModel>>();
  /**
   * GPU bytes set aside by key for models still compiling or warming up, counted like a busy
   * resident (never evicted) until the build settles, so concurrent loads cannot both fit.
   */
  private readonly reservations = new Map<string, number>();
  private readonly budgetBytes: number;
  private readonly onEvicted: (resident: ResidentModel, reason: string) => void;

  /** `budgetBytes`: what every resident model may hold together. `onEvicted`: told of each eviction, after it. */
  constructor(budgetBytes: number, onEvicted: (resident: ResidentModel, reason: string) => void) {
    this.budgetBytes = budgetBytes;
    this.onEvicted = onEvicted;
  }

  /** Bytes every resident model holds now. */
  get usedBytes(): number {
    const reserved = [...this.reservations.values()].reduce((total, bytes) => total + bytes, 0);
    return [...this.residents.values()].reduce((total, resident) => total + resident.bytes, reserved);
  }

  /**
   * Sets the bytes reserved for the build of `key` (called from inside its build) to `bytes`,
   * making room for any growth first (RESOURCE_EXHAUSTED as makeRoom). The reservation ends
   * when the build settles: the resident that replaces it counts its own bytes.
   */
  reserve(key: string, label: string, bytes: number): void {
    const reserved = this.reservations.get(key) ?? 0;
    if (bytes > reserved) this.makeRoom(label, bytes - reserved);
    this.reservations.set(key, bytes);
  }

  /** Raises what `resident` counts to `bytes` (a larger warm-up), making room for the growth first. */
  grow(resident: ResidentModel, label: string, bytes: number): void {
    if (bytes <= resident.bytes) return;
    this.makeRoom(label, bytes - resident.bytes);
    resident.bytes = bytes;
  }

  /** The model under `key` (loading it with `build` when absent), now also held by `version`. */
  async acquire(key: string, version: ModelKey, build: () => Promise<ResidentModel>): Promise<ResidentModel> {
    let resident = this.residents.get(key);
    if (!resident) {
      let pending = this.loading.get(key);
      if (!pending) {
        pending = build().then((built) => {
          this.reservations.delete(key);
          this.residents.set(key, built);
          return built;
        }, (error: unknown) => {
          this.reservations.delete(key);
          throw error;
        }).finally(() => this.loading.delete(key));
        this.loading.set(key, pending);
      }
      resident = await pending;
    }
    resident.versions.set(version, (resident.versions.get(version) ?? 0) + 1);
    resident.lastUsedMs = performance.now();
    return resident;
  }

  /** True while `resident` is the model resident under its key (not evicted, not disposed). */
  holds(resident: ResidentModel): boolean {
    return this.residents.get(resident.key) === resident;
  }

  /**
   * Gives back one hold `version` took on `resident` with acquire; the model is disposed once no
   * hold is left. Nothing happens when `resident` is no longer the one resident under its key
   * (it was evicted, and its key may hold a newer build).
   */
  release(resident: ResidentModel, version: ModelKey): void {
    if (!this.holds(resident)) return;
    const holds = resident.versions.get(version) ?? 0;
    if (holds <= 0) return;
    if (holds > 1) {
      resident.versions.set(version, holds - 1);
      return;
    }
    resident.versions.delete(version);
    if (resident.versions.size === 0) {
      this.residents.delete(resident.key);
      resident.model.dispose();
    }
  }

  /**
   * Makes room for `needBytes` more, evicting the least recently used idle models. Throws RESOURCE_EXHAUSTED naming the bytes and the budget when even
   * that is not enough; nothing is evicted then.
   */
  makeRoom(label: string, needBytes: number): void {
    const usage = [...this.residents.values()].map((resident) => ({
      key: resident.key, bytes: resident.bytes, idle: resident.busy === 0, lastUsedMs: resident.lastUsedMs,
    }));
    for (const [key, bytes] of this.reservations) usage.push({ key: `${key} (loading)`, bytes, idle: false, lastUsedMs: 0 });
    const evictions = evictionsToFit(usage, needBytes, this.budgetBytes);
    if (!evictions) {
      throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
        `${label} needs ${needBytes} bytes of GPU memory; ${this.usedBytes} of the executor's GPU budget of ${this.budgetBytes} bytes ` +
        `(NEXUS_GPU_BUDGET_BYTES) are held by models in use; unload one or raise the budget`);
    }
    for (const key of evictions) {
      const resident = this.residents.get(key)!;
      this.residents.delete(key);
      resident.model.dispose();
      this.onEvicted(resident, `evicted (least recently used) to fit ${label} in the GPU memory budget of ${this.budgetBytes} bytes`);
    }
  }
}
