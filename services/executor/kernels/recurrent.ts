/**
 * The recurrent kernels (RNN, GRU, LSTM): the projection X · W^T of every time step as one GEMM
 * (kernels/matmul.ts), then shaders/recurrent/*.wgsl: a load of the initial state, one step
 * kernel per time step (two for GRU without linear_before_reset), and a store of the final state.
 */
import type { StorageType } from '../tensor/index.ts';
import { planeGrid } from './elementwise.ts';
import { UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';
import { gemmVariants, matmulDispatch, type GemmAlgorithm } from './matmul.ts';

const WORKGROUP_SIZE = 64;

/** The cell a recurrent operator computes; its code is the step shader's CELL constant. */
export type RecurrentCell = 'rnn' | 'gru' | 'lstm';
const CELL_CODE: Readonly<Record<RecurrentCell, number>> = { rnn: 0, gru: 1, lstm: 2 };
/** Gate rows per hidden unit in W and R. */
export const GATES: Readonly<Record<RecurrentCell, number>> = { rnn: 1, gru: 3, lstm: 4 };

/** The activation functions ONNX lists for the recurrent operators, by the step shader's codes. */
export const RECURRENT_ACTIVATIONS = [
  'Relu', 'Tanh', 'Sigmoid', 'Affine', 'LeakyRelu', 'ThresholdedRelu', 'ScaledTanh', 'HardSigmoid', 'Elu', 'Softsign', 'Softplus',
] as const;
export type RecurrentActivationName = typeof RECURRENT_ACTIVATIONS[number];

/** One activation slot: its function with alpha and beta resolved. */
export interface RecurrentActivation {
  readonly name: RecurrentActivationName;
  readonly alpha: number;
  readonly beta: number;
}

/** The operator's shape for one plan. */
export interface RecurrentProblem {
  readonly cell: RecurrentCell;
  readonly timeSteps: number;
  readonly directions: number;
  readonly batch: number;
  readonly inputSize: number;
  readonly hidden: number;
}

const planes = (count: number, width: number, maxPerDimension: number): [number, number, number] =>
  (count === 0 || width === 0 ? [0, 1, 1] : planeGrid(count, width, WORKGROUP_SIZE, maxPerDimension));

const variant = (shader: string, type: StorageType, storageBindings: number, constants: Record<string, number> = {}): KernelVariant => ({
  shader: `recurrent/${shader}.wgsl`,
  types: { T: type },
  constants: { WORKGROUP_SIZE, ...constants },
  bindings: [...Array.from({ length: storageBindings - 1 }, () => 'read-only-storage' as const), 'storage', 'uniform'],
});

/** Where the GEMM's variants start among the operator's (after load, step, store). */
const GEMM_VARIANTS = 3;

/**
 * Variants in the order load, step, store, then the projection GEMM's. Bindings as the shaders'
 * headers list them; the GEMM's: x, w, two placeholders (no bias, no residual), projection.
 */
export function recurrentVariants(type: StorageType, cell: RecurrentCell, algorithm: GemmAlgorithm): KernelVariant[] {
  const step = variant('rnn_step', type, 7, { CELL: CELL_CODE[cell] });
  // The step's Y binding comes after its read-write state, so both are writable storage.
  const stepBindings = step.bindings.map((kind, index) => (index === 5 ? 'storage' : kind));
  const store = variant('rnn_state_store', type, 3);
  return [
    variant('rnn_state_load', type, 3),
    { ...step, bindings: stepBindings },
    { ...store, bindings: ['read-only-storage', 'storage', 'storage', 'uniform'] },
    // W [D, gates * H, I] is read through strides as B [I, D * gates * H]: scalar B loads.
    ...gemmVariants({ algorithm, fetcher: 'dense', type, bVec4: false, hasBias: false, hasResidual: false }),
  ];
}

/**
 * X · W^T for every step and direction: X as [T * B, I] rows (layout 0) or [B * T, I] (layout 1),
 * W as B [I, D * gates * H], so the projection is [T, B, D, gates * H] or [B, T, D, gates * H].
 */
export function recurrentProjectionDispatch(problem: RecurrentProblem, algorithm: GemmAlgorithm, maxPerDimension: number): Dispatch {
  const { timeSteps, directions, batch, inputSize, hidden, cell } = problem;
  const columns = directions * GATES[cell] * hidden;
  const dispatch = matmulDispatch(algorithm, {
    m: timeSteps * batch, n: columns, k: inputSize, batchShape: [1], aBatchStrides: [0], bBatchStrides: [0],
    aStrides: [inputSize, 1], bStrides: [1, inputSize],
  }, undefined, undefined, maxPerDimension);
  return { ...dispatch, variant: GEMM_VARIANTS + (dispatch.variant ?? 0) };
}

/** Where each region of the state scratch starts, in elements (each region holds D * B * H). */
export interface StateLayout {
  /** The two halves H ping-pongs between. */
  readonly halves: readonly [number, number];
  readonly cell: number;
  readonly reset: number;
  readonly elements: number;
}

export function stateLayout(problem: RecurrentProblem): StateLayout {
  const region = problem.directions * problem.batch * problem.hidden;
  return { halves: [0, region], cell: 2 * region, reset: 3 * region, elements: 4 * region };
}

/** Strides of initial_h / Y_h: [D, B, H] (layout 0) or [B, D, H] (layout 1). */
export interface StateStrides { readonly direction: number; readonly batch: number }

export function recurrentLoadDispatch(
  problem: RecurrentProblem, layout: StateLayout, strides: StateStrides, hasH: boolean, hasC: boolean, maxPerDimension: number,
): Dispatch {
  const count = problem.directions * problem.batch;
  return {
    variant: 0,
    workgroups: planes(count, problem.hidden, maxPerDimension),
    uniforms: new UniformWriter(32).u32(count).u32(problem.hidden).u32(problem.batch).u32(hasH ? 1 : 0).u32(hasC ? 1 : 0)
      .u32(problem.cell === 'lstm' ? layout.cell : 0).u32(strides.direction).u32(strides.batch).finish(),
  };
}

export function recurrentStoreDispatch(
  problem: RecurrentProblem, layout: StateLayout, strides: StateStrides, writeH: boolean, writeC: boolean, maxPerDimension: number,
): Dispatch {
  const count = problem.directions * problem.batch;
  return {
    variant: 2,
    workgroups: planes(count, problem.hidden, maxPerDimension),
    uniforms: new UniformWriter(36).u32(count).u32(problem.hidden).u32(problem.batch).u32(writeH ? 1 : 0).u32(writeC ? 1 : 0)
      .u32(layout.halves[problem.timeSteps % 2]).u32(layout.cell).u32(strides.direction).u32(strides.batch).finish(),
  };
}

/** What every step of one plan shares. */
export interface StepSettings {
  /** Bit d set: direction d walks time backward. */
  readonly reverseMask: number;
  /** Strides of Y: [T, D, B, H] (layout 0) or [B, T, D, H] (layout 1). */
  readonly yStrides: { readonly time: number; readonly direction: number; readonly batch: number };
  /** Strides of the projection's time steps and batch rows ([T, B, D, gates * H] or [B, T, D, gates * H]). */
  readonly projectionStrides: { readonly time: number; readonly batch: number };
  /** Rows that add Rb as well as Wb (all but GRU's hidden gate with linear_before_reset). */
  readonly recurrentBiasRows: number;
  readonly writeY: boolean;
  readonly hasBias: boolean;
  readonly hasPeepholes: boolean;
  readonly linearBeforeReset: boolean;
  readonly inputForget: boolean;
  readonly clip: number | undefined;
  /** Slot d * 3 + k: the k-th activation (f, g, h) of direction d. */
  readonly activations: readonly RecurrentActivation[];
}

/** The dispatch of step `step` (phase 0: GRU's r ⊙ H_{t-1}; phase 1: the cell). */
export function recurrentStepDispatch(
  problem: RecurrentProblem, layout: StateLayout, settings: StepSettings, step: number, phase: 0 | 1, maxPerDimension: number,
): Dispatch {
  const count = problem.directions * problem.batch;
  const slots = Array.from({ length: 8 }, (_, slot) => settings.activations[slot]);
  const writer = new UniformWriter(192).u32(count).u32(problem.hidden).u32(problem.batch).u32(problem.directions)
    .u32(problem.timeSteps).u32(step).u32(settings.reverseMask).u32(phase)
    .u32(layout.halves[step % 2]).u32(layout.halves[(step + 1) % 2]).u32(layout.cell).u32(layout.reset)
    .u32(settings.yStrides.time).u32(settings.yStrides.direction).u32(settings.yStrides.batch).u32(settings.writeY ? 1 : 0)
    .u32(settings.hasBias ? 1 : 0).u32(settings.hasPeepholes ? 1 : 0).u32(settings.linearBeforeReset ? 1 : 0).u32(settings.inputForget ? 1 : 0)
    .f32(settings.clip ?? 3.4028234663852886e38)
    .u32(settings.projectionStrides.time).u32(settings.projectionStrides.batch).u32(settings.recurrentBiasRows)
    .u32Array(slots.map((slot) => (slot ? RECURRENT_ACTIVATIONS.indexOf(slot.name) : 0)), 2)
    .f32Array(slots.map((slot) => slot?.alpha ?? 0), 2)
    .f32Array(slots.map((slot) => slot?.beta ?? 0), 2);
  return { variant: 1, workgroups: planes(count, problem.hidden, maxPerDimension), uniforms: writer.finish() };
}
