/**
 * Warm-up: before a version is reported loaded, it runs once on zeros at every batch size the
 * router may send (1..the max_batch_size the LoadModel names, else its record's), largest first, so every kernel variant and
 * every plan those sizes use exists before the first request. Inputs are sized from the declared
 * shapes (variable dims other than the batch dim count as 1) and checked against a budget
 * before anything is allocated.
 */
import { BYTES_PER_ELEMENT, viewAs, type HostTensor, type ModelSignature } from '../../onnx/index.ts';
import { DEFAULT_BATCHING_POLICY, ErrorCode, NexusError } from '../../domain/index.ts';
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import type { CompiledModel } from '../runtime/index.ts';

/** Most bytes of zeros one warm-up batch may feed a model (at its largest batch size): 256 MiB. */
export const DEFAULT_WARM_UP_BUDGET_BYTES = 256 * 1024 * 1024;

/** The largest batch the router may send a version: its record's batching, else the shared default (32). */
export function maxBatchSizeOf(version: ModelVersion): number {
  const configured = version.batching?.maxBatchSize ?? 0;
  return configured >= 1 ? configured : DEFAULT_BATCHING_POLICY.maxBatchSize;
}

/** Largest batch size a LoadModel may ask the executor to warm up to (LoadModel.max_batch_size). */
export const MAX_WARM_UP_BATCH_SIZE = 1024;

/**
 * The batch size a load warms up to: the router's `requested` (LoadModel.max_batch_size, its
 * effective policy) when set, else the record's (maxBatchSizeOf). Throws FAILED_PRECONDITION
 * naming the size when the router asks for more than MAX_WARM_UP_BATCH_SIZE.
 */
export function warmUpBatchSizeOf(version: ModelVersion, requested: number): number {
  if (requested > MAX_WARM_UP_BATCH_SIZE) {
    throw new NexusError(ErrorCode.FAILED_PRECONDITION,
      `load_model.max_batch_size is ${requested}; the executor warms up to at most ${MAX_WARM_UP_BATCH_SIZE}; lower the router's max batch size`);
  }
  return requested >= 1 ? requested : maxBatchSizeOf(version);
}

/** What a warm-up will run: the batch sizes, largest first, and the bytes of the largest batch. */
export interface WarmUpPlan {
  readonly batchSizes: readonly number[];
  readonly inputBytes: number;
  /** The input shapes of one batch size. */
  shapesFor(batchSize: number): Map<string, number[]>;
  /** The zero inputs of one batch size. */
  inputsFor(batchSize: number): Map<string, HostTensor>;
}

/** One input's shape at `batchSize`: a variable first dim is the batch, any other variable dim 1. */
function warmUpShape(shape: readonly number[], batchSize: number): number[] {
  return shape.map((dim, axis) => (dim >= 0 ? dim : axis === 0 ? batchSize : 1));
}

/**
 * Plans a warm-up for `signature` up to `maxBatchSize`, or returns undefined when the model
 * cannot be fed zeros (a BYTES input). Throws RESOURCE_EXHAUSTED naming the input bytes and
 * the budget when the largest batch would need more than `budgetBytes`.
 */
export function planWarmUp(label: string, signature: ModelSignature, maxBatchSize: number, budgetBytes: number): WarmUpPlan | undefined {
  if (signature.inputs.some((input) => input.datatype === 'BYTES')) return undefined;
  const batched = signature.inputs.some((input) => input.shape[0] === -1);
  const batchSizes = batched ? Array.from({ length: maxBatchSize }, (_, index) => maxBatchSize - index) : [1];
  // Computed in floating point from the declared shape, before anything is allocated.
  let inputBytes = 0;
  for (const input of signature.inputs) {
    const elements = warmUpShape(input.shape, batchSizes[0]).reduce((product, dim) => product * dim, 1);
    inputBytes += elements * BYTES_PER_ELEMENT[input.datatype];
  }
  if (!(inputBytes <= budgetBytes)) {
    const shapes = signature.inputs.map((input) => `${input.name}[${input.shape.join(', ')}]`).join(' ');
    throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
      `${label}: warm-up at batch ${batchSizes[0]} needs ${inputBytes} bytes of inputs (${shapes}), more than the warm-up budget of ` +
      `${budgetBytes} bytes (NEXUS_WARM_UP_BUDGET_BYTES); lower max_batch_size or the declared input shape`);
  }
  return {
    batchSizes,
    inputBytes,
    shapesFor: (batchSize) => new Map(signature.inputs.map((input) => [input.name, warmUpShape(input.shape, batchSize)])),
    inputsFor: (batchSize) => new Map(signature.inputs.map((input) => {
      const shape = warmUpShape(input.shape, batchSize);
      const bytes = new Uint8Array(shape.reduce((product, dim) => product * dim, 1) * BYTES_PER_ELEMENT[input.datatype]);
      return [input.name, { datatype: input.datatype, shape, data: viewAs(input.datatype, bytes) }];
    })),
  };
}

/** What a warm-up did. */
export interface WarmUpResult {
  /** Batch sizes that ran. */
  readonly warmed: number;
  /** Largest activation bytes of any warm-up batch (the largest batch's, normally). */
  readonly peakActivationBytes: number;
  /**
   * Why no batch size ran, when the model refused zeros at every one (INVALID_ARGUMENT): its
   * inputs are values that decide shapes or indices (Resize's scales, Slice's starts, TopK's K),
   * for which zeros are no valid input. The load goes on unwarmed; the first request plans.
   */
  readonly skipped?: string;
}

/**
 * Runs the plan on `model`. A batch size the model refuses as INVALID_ARGUMENT (a graph whose
 * "variable" batch dim is really fixed, or inputs for which zeros are invalid) is skipped; any
 * other failure fails the warm-up.
 */
export async function runWarmUp(model: CompiledModel, plan: WarmUpPlan | undefined): Promise<WarmUpResult> {
  if (!plan) return { warmed: 0, peakActivationBytes: 0 };
  let warmed = 0;
  let peakActivationBytes = 0;
  let firstRefusal: NexusError | undefined;
  for (const batchSize of plan.batchSizes) {
    try {
      const result = await model.run(plan.inputsFor(batchSize));
      warmed += 1;
      peakActivationBytes = Math.max(peakActivationBytes, result.peakBytes);
    } catch (error) {
      const coded = NexusError.from(error);
      if (coded.code !== ErrorCode.INVALID_ARGUMENT) throw coded;
      firstRefusal ??= coded;
    }
  }
  if (warmed === 0 && firstRefusal) return { warmed, peakActivationBytes, skipped: `zeros are no valid input: ${firstRefusal.message}` };
  return { warmed, peakActivationBytes };
}
