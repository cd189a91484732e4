/**
 * Shared by the operator-family tests: models whose outputs have no declared shape (shapes that
 * only a run decides), and checking a model on several input sets against onnxruntime.
 */
import { expect } from 'vitest';
import type { GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel, type CompiledModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { ModelProto } from '../../../services/protocol/generated/onnx/onnx.ts';
import { expectClose, runOrt } from '../numerics/ort-reference.ts';

/** The graph's bytes with every output's shape left undeclared (onnxruntime then checks no rank). */
export function unrankedOutputs(graph: GraphBuilder, opset: number): Uint8Array {
  const model = graph.toModel({ opset });
  for (const output of model.graph!.output) output.type!.tensorType!.shape = undefined;
  return ModelProto.encode(model).finish();
}

/**
 * Compiles `bytes` and runs every input set through it and onnxruntime (CPU), comparing every
 * output (shape, and values within the FP32 tolerance or exactly). Returns each run's read-backs.
 */
export async function checkRuns(gpu: GpuContext, bytes: Uint8Array, runs: ReadonlyArray<Map<string, HostTensor>>): Promise<number[]> {
  const model: CompiledModel = await compileOnnxModel(gpu, bytes, { isolate: false });
  try {
    const readbacks: number[] = [];
    for (const inputs of runs) {
      const [ours, reference] = await Promise.all([model.run(inputs), runOrt(bytes, inputs)]);
      expect([...ours.outputs.keys()].sort()).toEqual([...reference.keys()].sort());
      for (const [name, tensor] of reference) expectClose(name, ours.outputs.get(name), tensor);
      readbacks.push(ours.readbacks ?? 0);
    }
    return readbacks;
  } finally {
    model.dispose();
  }
}

/**
 * `op` over initializers (fresh values in every model) folds on the CPU at load; the folded value
 * (its first output; `extraOutputs` names the others, unread) is then added to a graph input on
 * the GPU, so the model still runs (and is compared) end to end.
 */
export function foldedModel(
  op: string, constants: HostTensor[], outShape: number[], attributes: Record<string, AttributeValue> = {}, opset = 13, extraOutputs: string[] = [],
): Uint8Array {
  const graph = new GraphBuilder(`folded_${op.toLowerCase()}`).input('x', 'FP32', outShape);
  constants.forEach((tensor, index) => graph.initializer(`c${index}`, tensor.datatype, tensor.shape, tensor.data));
  return graph.node(op, constants.map((_, index) => `c${index}`), ['folded', ...extraOutputs], attributes)
    .node('Add', ['x', 'folded'], ['y']).output('y', 'FP32', outShape).toBytes({ opset });
}
