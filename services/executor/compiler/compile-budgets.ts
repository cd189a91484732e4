/**
 * What compiling one model may cost, checked from shapes and declared sizes before anything is
 * allocated, so a hostile file fails its load instead of exhausting the executor's memory.
 *
 * A budget exceeded is RESOURCE_EXHAUSTED naming the budget, the value and the limit; a shape
 * that is not a shape at all (a negative, fractional, NaN or unsafe dim) is INVALID_ARGUMENT,
 * like every other malformed model. The defaults are below; the service may override them from
 * the environment variables each budget names (read at the composition edge, never here).
 */
import { BYTES_PER_ELEMENT, type Datatype } from '../../onnx/datatypes.ts';
import type { ModelProto, NodeProto, TensorProto } from '../../onnx/model.ts';
import { datatypeOfOnnxCode } from '../../onnx/datatypes.ts';
import { ErrorCode, invalidArgument, NexusError } from '../../domain/errors.ts';
import type { CpuAllocator } from '../ops/index.ts';

export interface CompileBudgets {
  /** Bytes all tensors made by constant folding in one compile may take together. Default 1 GiB (NEXUS_FOLD_BUDGET_BYTES). */
  readonly foldBytes: number;
  /** Bytes one tensor made by constant folding (or by one host evaluation per plan) may take. Default 512 MiB (NEXUS_FOLD_TENSOR_BYTES). */
  readonly foldTensorBytes: number;
  /** Nodes one graph may have. Default 100 000 (NEXUS_MAX_GRAPH_NODES). */
  readonly maxNodes: number;
  /** Bytes of initializers and Constant-node tensors (the weights), as declared by their dims. Default 2 GiB (NEXUS_WEIGHT_BUDGET_BYTES). */
  readonly weightBytes: number;
  /** Elements any one tensor (declared, folded or computed per plan) may have. Default 2^31 - 1 (NEXUS_MAX_TENSOR_ELEMENTS). */
  readonly maxTensorElements: number;
  /** V8 old-generation heap of the worker that compiles an untrusted model first, in MiB. Default 2048 (NEXUS_COMPILE_HEAP_MB). */
  readonly compileHeapMb: number;
  /** Wall-clock time that worker may take, in milliseconds. Default 120 000 (NEXUS_COMPILE_TIMEOUT_MS). */
  readonly compileTimeoutMs: number;
}

const MIB = 1024 * 1024;

/** The budgets a compile runs under unless its options say otherwise. */
export const DEFAULT_COMPILE_BUDGETS: CompileBudgets = {
  foldBytes: 1024 * MIB,
  foldTensorBytes: 512 * MIB,
  maxNodes: 100_000,
  weightBytes: 2048 * MIB,
  maxTensorElements: 2 ** 31 - 1,
  compileHeapMb: 2048,
  compileTimeoutMs: 120_000,
};

/** The environment variable that overrides each budget (the service reads them; named in errors). */
export const BUDGET_ENV: Readonly<Record<keyof CompileBudgets, string>> = {
  foldBytes: 'NEXUS_FOLD_BUDGET_BYTES',
  foldTensorBytes: 'NEXUS_FOLD_TENSOR_BYTES',
  maxNodes: 'NEXUS_MAX_GRAPH_NODES',
  weightBytes: 'NEXUS_WEIGHT_BUDGET_BYTES',
  maxTensorElements: 'NEXUS_MAX_TENSOR_ELEMENTS',
  compileHeapMb: 'NEXUS_COMPILE_HEAP_MB',
  compileTimeoutMs: 'NEXUS_COMPILE_TIMEOUT_MS',
};

/** The defaults with `overrides` applied; each value must be a positive safe integer. */
export function resolveBudgets(overrides: Partial<CompileBudgets> = {}): CompileBudgets {
  const budgets = { ...DEFAULT_COMPILE_BUDGETS, ...overrides };
  for (const [name, value] of Object.entries(budgets)) {
    if (!Number.isSafeInteger(value) || value <= 0) throw invalidArgument(`budget ${name} is ${value}; it must be a positive integer`);
  }
  return budgets;
}

/** "the folding budget is 1073741824 bytes (foldBytes, NEXUS_FOLD_BUDGET_BYTES)". */
const budgetText = (name: keyof CompileBudgets, limit: number, unit: string) => `${limit}${unit} (${name}, ${BUDGET_ENV[name]})`;

const exhausted = (message: string) => new NexusError(ErrorCode.RESOURCE_EXHAUSTED, message);

/**
 * The element count of `shape` after checking every dim is a non-negative safe integer
 * (INVALID_ARGUMENT naming `what`) and the count fits maxTensorElements (RESOURCE_EXHAUSTED).
 */
export function checkedElementCount(shape: readonly number[], what: string, budgets: CompileBudgets): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw invalidArgument(`${what} has shape [${shape.join(', ')}]: dim ${dim} is not a non-negative integer`);
    }
  }
  if (shape.includes(0)) return 0;
  for (const dim of shape) {
    count *= dim;
    if (count > budgets.maxTensorElements) {
      const total = shape.reduce((product, value) => product * value, 1);
      throw exhausted(`${what} has shape [${shape.join(', ')}], ${total} elements; a tensor may have ${budgetText('maxTensorElements', budgets.maxTensorElements, ' elements')}`);
    }
  }
  return count;
}

/**
 * Checks what the model declares before any of it is decoded into tensors: the node count,
 * every initializer's and Constant tensor's dims, and their bytes together (the weights).
 */
export function checkDeclaredSizes(model: ModelProto, budgets: CompileBudgets): void {
  const graph = model.graph!;
  if (graph.node.length > budgets.maxNodes) {
    throw exhausted(`the graph has ${graph.node.length} nodes; a graph may have ${budgetText('maxNodes', budgets.maxNodes, ' nodes')}`);
  }
  let weightBytes = 0;
  const count = (tensor: TensorProto, what: string) => {
    const elements = checkedElementCount(tensor.dims.map(Number), what, budgets);
    weightBytes += elements * BYTES_PER_ELEMENT[datatypeOfOnnxCode(tensor.dataType)];
    if (weightBytes > budgets.weightBytes) {
      throw exhausted(`${what} brings the weights to ${weightBytes} bytes; the weight budget is ${budgetText('weightBytes', budgets.weightBytes, ' bytes')}`);
    }
  };
  for (const initializer of graph.initializer) count(initializer, `initializer '${initializer.name}'`);
  for (const node of graph.node) {
    for (const attribute of node.attribute) if (attribute.t) count(attribute.t, `the tensor of ${node.opType} '${node.name}'`);
  }
  for (const value of [...graph.input, ...graph.output]) {
    const dims = value.type?.tensorType?.shape?.dim ?? [];
    const fixed = dims.map((dim) => (dim.dimValue !== undefined && dim.dimValue > 0 ? dim.dimValue : 0));
    checkedElementCount(fixed, `graph value '${value.name}'`, budgets);
  }
}

/**
 * The allocator constant folding runs under: each tensor within foldTensorBytes, all of them
 * together within foldBytes. `purpose` opens its messages ("constant folding").
 */
export function createFoldAllocator(budgets: CompileBudgets, purpose = 'constant folding', totalLimit = budgets.foldBytes): CpuAllocator {
  let total = 0;
  return {
    reserve(node: NodeProto, shape: readonly number[], datatype: Datatype): void {
      const what = `${purpose} of ${node.opType} '${node.name}'`;
      const bytes = checkedElementCount(shape, `the output of ${what}`, budgets) * Math.max(BYTES_PER_ELEMENT[datatype], 1);
      if (bytes > budgets.foldTensorBytes) {
        throw exhausted(`${what} would allocate ${bytes} bytes; the budget per folded tensor is ${budgetText('foldTensorBytes', budgets.foldTensorBytes, ' bytes')}`);
      }
      if (total + bytes > totalLimit) {
        throw exhausted(`${what} would allocate ${bytes} bytes, ${total + bytes} in all; the folding budget is ${budgetText('foldBytes', totalLimit, ' bytes')}`);
      }
      total += bytes;
    },
  };
}
