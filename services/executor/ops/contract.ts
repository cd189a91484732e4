/**
 * The operator contract: what an operator spec declares (attributes, input and output counts,
 * output datatypes, host-read parameters), how it evaluates on the CPU, and how it runs on the
 * GPU (a kernel: pipeline variants plus per-shape dispatches, or an alias: a new shape over the
 * same buffer). Types only; the registry (registry.ts) maps op types to specs.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import type { Dispatch, GemmAlgorithm, KernelVariant, UnaryFunction } from '../kernels/index.ts';
import type { Precision } from '../tensor/index.ts';

/** Where a value lives: known when the model loads, computed on the CPU per input shape, or on the GPU. */
export type Location = 'constant' | 'host' | 'device';

/** One node input as an operator sees it when the model loads. */
export interface LoadInput {
  readonly name: string | undefined;
  readonly datatype: Datatype | undefined;
  readonly location: Location | undefined;
  /** The value, when it is known at load time. */
  readonly constant: HostTensor | undefined;
}

/**
 * Fused work an operator takes over from the nodes after it (and, for MatMul, the Transposes
 * before it). Bias and residual are indices into the operator's inputs: the graph compiler
 * appends those values after the node's own inputs.
 */
export interface Epilogue {
  readonly activation: UnaryFunction;
  /** A 1-D per-column (MatMul / Gemm) or per-channel (Conv) bias; replaces the node's own bias. */
  readonly bias?: number;
  /** A value with exactly the output's shape, added before the activation. */
  readonly residual?: number;
  /**
   * Softmax / LogSoftmax only: a constant factor the input is multiplied by first (a Mul or Div
   * by a scalar constant before the node, such as attention's 1 / sqrt(d)).
   */
  readonly inputScale?: number;
  /**
   * MatMul only: a Transpose folded into operand A / B. The operator's input is the Transpose's
   * input, read through the permutation (strides) instead of a transposed copy.
   */
  readonly aPerm?: readonly number[];
  readonly bPerm?: readonly number[];
}

/** What the executor knows about the GPU that changes which kernels an operator picks. */
export interface GpuTraits {
  readonly gemmAlgorithm: GemmAlgorithm;
}

export interface LoadContext {
  readonly node: NodeProto;
  readonly opset: number;
  readonly precision: Precision;
  readonly inputs: readonly LoadInput[];
  readonly outputTypes: readonly Datatype[];
  readonly traits: GpuTraits;
  /** Registers a constant derived at load time (re-laid-out weights, ...) and returns its name. */
  addConstant(suffix: string, tensor: HostTensor): string;
  /** Work fused into this node by the graph compiler (GEMM-like and binary operators only). */
  readonly epilogue?: Epilogue;
}

/**
 * One node input for concrete input shapes, as both the CPU evaluation and the GPU planning
 * see it: its shape always, its value when it is known on the host (constants and shape
 * computations).
 */
export interface NodeInput {
  readonly shape: readonly number[];
  readonly value: HostTensor | undefined;
}

/** What a binding of a planned dispatch reads or writes. */
export type BindingRef =
  | { readonly input: number }
  | { readonly output: number }
  | { readonly value: string }
  | { readonly scratch: number }
  /** The i32 dims of output `dims`, for an output whose shape the GPU decides (DeviceOperator.deviceShaped). */
  | { readonly dims: number }
  /** Table `table` of the plan (OperatorPlan.tables). */
  | { readonly table: number }
  | { readonly placeholder: true };

export interface PlannedKernel extends Dispatch {
  /** One per binding of the variant except the uniform block, in binding order. */
  readonly bindings: readonly BindingRef[];
}

export interface OperatorPlan {
  readonly outputShapes: number[][];
  readonly dispatches: readonly PlannedKernel[];
  /** Scratch tensors (element counts, stored like output 0) the dispatches may use. */
  readonly scratch?: readonly number[];
  /**
   * Small tables the plan computes on the host for its dispatches (Resize's sampling positions and
   * weights, computed in f32 exactly as the reference does), as raw 32-bit words; uploaded once
   * per plan and bound through `{ table }`.
   */
  readonly tables?: readonly Uint32Array[];
}

/** A node as the GPU runs it. */
export interface DeviceOperator {
  /** 'alias': output 0 is input 0's buffer under a new shape; no dispatch. */
  readonly kind: 'kernel' | 'alias';
  /** Every pipeline variant a dispatch may pick (PlannedKernel.variant indexes this). */
  readonly variants: readonly KernelVariant[];
  /**
   * Outputs whose shape the GPU decides (NonZero's count): the plan's outputShapes give each one's
   * capacity (its buffer), the dispatches write its dims through a `{ dims }` binding, and the
   * runtime reads them back before any later step reads the output.
   */
  readonly deviceShaped?: readonly number[];
  /** Output shapes and dispatches for these input shapes; throws INVALID_ARGUMENT / RangeError. */
  plan(inputs: ReadonlyArray<NodeInput | undefined>, maxPerDimension: number): OperatorPlan;
}

export interface TypeContext {
  readonly node: NodeProto;
  readonly inputTypes: ReadonlyArray<Datatype | undefined>;
}

/**
 * Accounts for what CPU implementations allocate: `reserve` is called with an output's shape
 * before the output exists and throws (RESOURCE_EXHAUSTED, INVALID_ARGUMENT for a bad shape)
 * when it does not fit the compile's budgets (compiler/compile-budgets.ts).
 */
export interface CpuAllocator {
  reserve(node: NodeProto, shape: readonly number[], datatype: Datatype): void;
}

export interface CpuContext {
  readonly node: NodeProto;
  readonly opset: number;
  /** Node inputs in order; undefined where omitted. */
  readonly inputs: ReadonlyArray<NodeInput | undefined>;
  /** Datatypes of the node's outputs (from type inference). */
  readonly outputTypes: readonly Datatype[];
  /** Every new output tensor is reserved here before it is allocated. */
  readonly allocator: CpuAllocator;
}

/** A CPU implementation: folds constants at load, evaluates shape computations per plan. */
export type CpuOp = (context: CpuContext) => HostTensor[];

export interface OperatorSpec {
  /** Attribute names the implementation understands; any other attribute is refused. */
  readonly attributes: readonly string[];
  /** Allowed input counts, [min, max] (trailing '' inputs count as absent). */
  readonly inputs: readonly [number, number];
  /** Allowed output counts; outputs past the first must be unused (unless computesEveryOutput). Default [1, 1]. */
  readonly outputs?: readonly [number, number];
  /** The operator computes every output it declares (LayerNormalization's Mean and InvStdDev), so later nodes may read them. */
  readonly computesEveryOutput?: boolean;
  /** Output 0 may be left unnamed (RNN, GRU, LSTM asked only for their final state); at least one output is named. */
  readonly firstOutputOptional?: boolean;
  /** Inputs read on the host (they must be known before the GPU runs). */
  readonly parameters?: readonly number[];
  /** True for operators whose outputs depend only on their inputs' shapes (Shape, Size). */
  readonly shapeOnly?: boolean;
  types(context: TypeContext): Datatype[];
  /** Checks attribute values at load time (for operators that may run on the CPU only). */
  validate?(node: NodeProto, opset: number): void;
  readonly cpu?: CpuOp;
  device?(context: LoadContext): DeviceOperator;
}
