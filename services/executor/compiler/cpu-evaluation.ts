/**
 * Running one node's CPU implementation: constant folding at load, shape computations per
 * input shape, every output reserved with `allocator` first. Errors are INVALID_ARGUMENT naming
 * the node (an unsupported case stays FAILED_PRECONDITION, a budget RESOURCE_EXHAUSTED).
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { ErrorCode, invalidArgument, NexusError } from '../../domain/errors.ts';
import type { CpuAllocator, NodeInput, OperatorSpec } from '../ops/index.ts';

/** Codes that already say what is wrong (an unsupported case, a budget, a malformed shape). */
const PASSED_THROUGH: ReadonlySet<ErrorCode> = new Set([ErrorCode.FAILED_PRECONDITION, ErrorCode.RESOURCE_EXHAUSTED]);

/** The node's outputs from `inputs` (shapes always, values where the CPU needs them). */
export function evaluateOnCpu(
  node: NodeProto, spec: OperatorSpec, opset: number, outputTypes: readonly Datatype[], inputs: ReadonlyArray<NodeInput | undefined>, allocator: CpuAllocator,
): HostTensor[] {
  try {
    return spec.cpu!({ node, opset, inputs, outputTypes, allocator });
  } catch (error) {
    if (error instanceof NexusError && PASSED_THROUGH.has(error.code)) throw error;
    throw invalidArgument(`node '${node.name}' (${node.opType}): ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A host tensor as a node input: its own shape and value. */
export const knownInput = (tensor: HostTensor | undefined): NodeInput | undefined => (tensor ? { shape: tensor.shape, value: tensor } : undefined);
