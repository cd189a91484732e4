/**
 * Running one node's CPU implementation: constant folding at load, shape computations per
 * input shape. Errors are INVALID_ARGUMENT naming the node (an unsupported case stays
 * FAILED_PRECONDITION).
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { ErrorCode, invalidArgument, NexusError } from '../../domain/errors.ts';
import type { NodeInput, OperatorSpec } from '../ops/index.ts';

/** The node's outputs from `inputs` (shapes always, values where the CPU needs them). */
export function evaluateOnCpu(
  node: NodeProto, spec: OperatorSpec, opset: number, outputTypes: readonly Datatype[], inputs: ReadonlyArray<NodeInput | undefined>,
): HostTensor[] {
  try {
    return spec.cpu!({ node, opset, inputs, outputTypes });
  } catch (error) {
    if (error instanceof NexusError && error.code === ErrorCode.FAILED_PRECONDITION) throw error;
    throw invalidArgument(`node '${node.name}' (${node.opType}): ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A host tensor as a node input: its own shape and value. */
export const knownInput = (tensor: HostTensor | undefined): NodeInput | undefined => (tensor ? { shape: tensor.shape, value: tensor } : undefined);
