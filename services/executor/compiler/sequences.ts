/**
 * Sequence and optional values. The KServe v2 protocol carries tensors only, so a model whose
 * graph inputs or outputs are sequences, optionals or maps cannot be served: it is refused at
 * load, naming the value.
 */
import type { ModelProto } from '../../onnx/model.ts';
import { failedPrecondition } from '../../domain/errors.ts';

/** FAILED_PRECONDITION naming the first graph input or output that is not a tensor. */
export function checkTensorSignature(model: ModelProto): void {
  const graph = model.graph!;
  const initializers = new Set(graph.initializer.map((tensor) => tensor.name));
  for (const [kind, values] of [['input', graph.input.filter((value) => !initializers.has(value.name))], ['output', graph.output]] as const) {
    for (const value of values) {
      if (value.type && !value.type.tensorType) {
        throw failedPrecondition(
          `graph ${kind} '${value.name}' is not a tensor (a sequence, optional or map value): KServe v2 requests and responses carry tensors only, ` +
          'so such a value can only live inside the graph',
        );
      }
    }
  }
}
