/**
 * Turns a decoded ONNX model into a list of runtime steps: every operator checked, nodes in
 * topological order, Constant nodes (and reshapes of constants) evaluated, ranks checked, and
 * nodes that no output depends on dropped. Pure: no GPU here.
 */
import type { HostTensor, ModelProto, ModelSignature, NodeProto } from '../../onnx/model.ts';
import { defaultOpsetVersion, signatureOf, tensorFromProto } from '../../onnx/model.ts';
import { failedPrecondition, NexusError } from '../../rpc/errors.ts';
import { checkSupported, compileOperator, constantValue, invalidNode, unsupported, type RuntimeOperator } from './operators.ts';

/** One node that runs per batch: a kernel dispatch or a buffer alias. */
export interface Step {
  readonly node: NodeProto;
  readonly operator: RuntimeOperator;
  /** The node's inputs read at run time, in node-input order; undefined where omitted. */
  readonly inputs: ReadonlyArray<string | undefined>;
  readonly output: string;
}

export interface CompiledGraph {
  /** The ONNX graph's name (labels GPU objects). */
  readonly name: string;
  readonly signature: ModelSignature;
  readonly opset: number;
  /** Values known at compile time (initializers, Constant nodes, reshapes of them), by name. */
  readonly constants: ReadonlyMap<string, HostTensor>;
  /** Steps in an order where every input is computed before it is read. */
  readonly steps: readonly Step[];
  /** Graph output names, in signature order. */
  readonly outputs: readonly string[];
}

/** Compiles the model's graph; throws FAILED_PRECONDITION for anything the executor cannot run. */
export function compileGraph(model: ModelProto): CompiledGraph {
  const graph = model.graph!;
  const opset = defaultOpsetVersion(model);
  const signature = signatureOf(model);
  for (const input of signature.inputs) {
    if (input.datatype !== 'FP32') {
      throw failedPrecondition(`input '${input.name}' is ${input.datatype}; the GPU executor takes FP32 inputs only`);
    }
  }
  // Unsupported operators are reported before anything else, whatever their position.
  for (const node of graph.node) checkSupported(node);

  const constants = new Map<string, HostTensor>();
  for (const initializer of graph.initializer) constants.set(initializer.name, tensorFromProto(initializer));
  // Ranks of run-time values; every one of them is FP32.
  const ranks = new Map<string, number>();
  for (const input of signature.inputs) ranks.set(input.name, input.shape.length);

  const steps: Step[] = [];
  for (const node of topologicalOrder(graph.node, [...ranks.keys(), ...constants.keys()])) {
    if (node.opType === 'Constant') {
      constants.set(node.output[0], constantValue(node));
      continue;
    }
    const operator = compileOperator({
      node,
      opset,
      constantInput: (index) => (node.input[index] ? constants.get(node.input[index]) : undefined),
    });
    const output = node.output[0];
    if (operator.kind === 'alias') {
      const data = constants.get(node.input[0]);
      if (data) {
        // A reshape of a constant is a constant: fold it, so it also works on INT64 shapes.
        constants.set(output, { ...data, shape: foldShape(node, operator, data) });
        continue;
      }
    }
    const inputs = operator.kind === 'kernel'
      ? operator.inputSlots.map((index) => node.input[index] || undefined)
      : [node.input[0]];
    const inputRanks = inputs.map((name) => {
      if (name === undefined) return undefined;
      const constant = constants.get(name);
      if (!constant) return ranks.get(name);
      if (constant.datatype !== 'FP32') throw unsupported(node, `${constant.datatype} input '${name}' (only FP32 is computed)`);
      return constant.shape.length;
    });
    ranks.set(output, operator.outputRank(inputRanks));
    steps.push({ node, operator, inputs, output });
  }

  const outputs = signature.outputs.map((output) => output.name);
  for (const name of outputs) {
    const constant = constants.get(name);
    if (constant && constant.datatype !== 'FP32') {
      throw failedPrecondition(`graph output '${name}' is ${constant.datatype}; the GPU executor returns FP32 outputs only`);
    }
    if (!constant && !ranks.has(name)) throw failedPrecondition(`graph output '${name}' is not computed by any node`);
  }
  return { name: graph.name, signature, opset, constants, steps: withoutDeadSteps(steps, outputs), outputs };
}

function foldShape(node: NodeProto, operator: RuntimeOperator, data: HostTensor): number[] {
  try {
    return operator.inferShape([data.shape]);
  } catch (error) {
    throw invalidNode(node, error instanceof NexusError ? error.message : String(error));
  }
}

/**
 * Nodes ordered so that each comes after the producers of its inputs (Kahn's algorithm, keeping
 * the file's order among ready nodes). Throws when an input has no producer or nodes form a cycle.
 */
export function topologicalOrder(nodes: readonly NodeProto[], available: Iterable<string>): NodeProto[] {
  const producerOf = new Map<string, NodeProto>();
  for (const node of nodes) for (const output of node.output) producerOf.set(output, node);
  const known = new Set(available);
  const waitingOn = new Map<NodeProto, number>();
  const consumersOf = new Map<string, NodeProto[]>();
  for (const node of nodes) {
    const pending = new Set(node.input.filter((name) => name && !known.has(name)));
    for (const name of pending) {
      if (!producerOf.has(name)) {
        throw invalidNode(node, `input '${name}' is neither a graph input, an initializer nor any node's output`);
      }
      consumersOf.set(name, [...(consumersOf.get(name) ?? []), node]);
    }
    waitingOn.set(node, pending.size);
  }
  const order: NodeProto[] = [];
  const ready = nodes.filter((node) => waitingOn.get(node) === 0);
  while (ready.length > 0) {
    const node = ready.shift()!;
    order.push(node);
    for (const output of node.output) {
      for (const consumer of consumersOf.get(output) ?? []) {
        const remaining = waitingOn.get(consumer)! - 1;
        waitingOn.set(consumer, remaining);
        if (remaining === 0) ready.push(consumer);
      }
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.filter((node) => !order.includes(node)).map((node) => `'${node.name}'`);
    throw failedPrecondition(`the graph has a cycle through node(s) ${stuck.join(', ')}`);
  }
  return order;
}

/** Steps that some graph output depends on, in their original order. */
function withoutDeadSteps(steps: readonly Step[], outputs: readonly string[]): Step[] {
  const needed = new Set(outputs);
  const kept: Step[] = [];
  for (let index = steps.length - 1; index >= 0; index--) {
    const step = steps[index];
    if (!needed.has(step.output)) continue;
    kept.push(step);
    for (const input of step.inputs) if (input) needed.add(input);
  }
  return kept.reverse();
}
