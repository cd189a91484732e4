/**
 * The graph the compiler works on: the placed nodes of an ONNX model (each on the CPU per
 * input shape or on the GPU) with the values known at load, and the graph questions every pass
 * asks: topological order, who reads a value, who produces it, what no output needs.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { failedPrecondition } from '../../domain/errors.ts';
import { invalidNode, operatorSpec, unsupported, type Epilogue, type Location, type OperatorSpec } from '../ops/index.ts';

/** Work a node took over from its neighbours (fusion). */
export interface NodeFusion {
  readonly epilogue: Epilogue;
  /** Values appended to the node's inputs (bias, residual), indexed by the epilogue. */
  readonly extraInputs: readonly string[];
  /** "Conv 'conv_1' + Add 'add_3' + Relu 'relu_4'", for labels and errors. */
  readonly label: string;
}

/** One node, placed on the CPU (`host`, evaluated per input shape) or on the GPU. */
export interface GraphNode {
  /** The node as it runs: a fused node reads and writes what its absorbed neighbours did. */
  readonly node: NodeProto;
  readonly spec: OperatorSpec;
  readonly outputTypes: readonly Datatype[];
  readonly host: boolean;
  /**
   * Where the node runs in the model's topological order. A fused node runs at its last
   * absorbed node's position, after every value it reads.
   */
  readonly position: number;
  readonly fusion?: NodeFusion;
}

/** The placed nodes of a model and every value known about it at load. */
export interface Graph {
  /**
   * In the model's topological order, a fused node at its head's place (it runs at its
   * `position`, which may be later): passes visit nodes in this order.
   */
  readonly nodes: readonly GraphNode[];
  /** Graph output names, in signature order. */
  readonly outputs: readonly string[];
  /** Values known at load time, by name (initializers, Constant nodes, folded, derived). */
  readonly constants: ReadonlyMap<string, HostTensor>;
  /** Every value's datatype. */
  readonly datatypes: ReadonlyMap<string, Datatype>;
  readonly locations: ReadonlyMap<string, Location>;
  /** What fusion merged away so far, in order: "Relu 'relu_3' into Conv 'conv_2'". */
  readonly fused: readonly string[];
}

/** A node's inputs as it runs: its own, then the values fusion appended. */
export function inputsOf(entry: GraphNode): string[] {
  return [...entry.node.input, ...(entry.fusion?.extraInputs ?? [])];
}

/** Every value's readers: the node and the input index it reads the value at. */
export function readersOf(nodes: readonly GraphNode[]): Map<string, Array<{ entry: GraphNode; index: number }>> {
  const readers = new Map<string, Array<{ entry: GraphNode; index: number }>>();
  for (const entry of nodes) {
    inputsOf(entry).forEach((name, index) => {
      if (!name) return;
      const list = readers.get(name);
      if (list) list.push({ entry, index });
      else readers.set(name, [{ entry, index }]);
    });
  }
  return readers;
}

/** Every value's producer. */
export function producersOf(nodes: readonly GraphNode[]): Map<string, GraphNode> {
  const producers = new Map<string, GraphNode>();
  for (const entry of nodes) for (const name of entry.node.output) if (name) producers.set(name, entry);
  return producers;
}

/**
 * True when `name` can be fused away: it is not a graph output and exactly one node reads it.
 * Anything else (a second reader, a graph output) still needs the value itself.
 */
export function hasSingleReader(graph: Graph, readers: ReadonlyMap<string, readonly unknown[]>, name: string): boolean {
  return !graph.outputs.includes(name) && (readers.get(name)?.length ?? 0) === 1;
}

/** `graph`'s value maps with each of `added` registered as a constant (copies; `graph` is unchanged). */
export function withConstants(graph: Graph, added: ReadonlyArray<readonly [string, HostTensor]>): Pick<Graph, 'constants' | 'datatypes' | 'locations'> {
  const constants = new Map(graph.constants);
  const datatypes = new Map(graph.datatypes);
  const locations = new Map(graph.locations);
  for (const [name, tensor] of added) {
    constants.set(name, tensor);
    datatypes.set(name, tensor.datatype);
    locations.set(name, 'constant');
  }
  return { constants, datatypes, locations };
}

/** "Conv 'conv_1'". */
export const describeNode = (node: NodeProto): string => `${node.opType} '${node.name}'`;

/**
 * Nodes ordered so that each comes after the producers of its inputs (Kahn's algorithm, keeping
 * the file's order among ready nodes: a first-in first-out queue seeded in file order). Linear
 * in nodes plus edges: consumer lists are built once and the queue is an index into one array.
 * Throws when an input has no producer or nodes form a cycle.
 */
export function topologicalOrder(nodes: readonly NodeProto[], available: Iterable<string>): NodeProto[] {
  const producerOf = new Map<string, number>();
  nodes.forEach((node, index) => {
    for (const output of node.output) if (output) producerOf.set(output, index);
  });
  const known = new Set(available);
  const waitingOn = new Int32Array(nodes.length);
  const consumersOf = new Map<string, number[]>();
  nodes.forEach((node, index) => {
    const pending = new Set<string>();
    for (const name of node.input) if (name && !known.has(name)) pending.add(name);
    for (const name of pending) {
      if (!producerOf.has(name)) {
        throw invalidNode(node, `input '${name}' is neither a graph input, an initializer nor any node's output`);
      }
      const consumers = consumersOf.get(name);
      if (consumers) consumers.push(index);
      else consumersOf.set(name, [index]);
    }
    waitingOn[index] = pending.size;
  });
  const queue: number[] = [];
  for (let index = 0; index < nodes.length; index++) if (waitingOn[index] === 0) queue.push(index);
  for (let head = 0; head < queue.length; head++) {
    for (const output of nodes[queue[head]].output) {
      for (const consumer of consumersOf.get(output) ?? []) {
        if (--waitingOn[consumer] === 0) queue.push(consumer);
      }
    }
  }
  if (queue.length !== nodes.length) {
    const stuck = nodes.filter((_, index) => waitingOn[index] > 0).map((node) => `'${node.name}'`);
    throw failedPrecondition(`the graph has a cycle through node(s) ${stuck.join(', ')}`);
  }
  return queue.map((index) => nodes[index]);
}

/** The nodes some graph output depends on, in their original order. */
export function withoutDeadNodes(nodes: readonly GraphNode[], outputs: readonly string[]): GraphNode[] {
  const needed = new Set(outputs);
  const kept: GraphNode[] = [];
  for (let index = nodes.length - 1; index >= 0; index--) {
    const entry = nodes[index];
    if (!entry.node.output.some((name) => name && needed.has(name))) continue;
    kept.push(entry);
    for (const input of entry.node.input) if (input) needed.add(input);
  }
  return kept.reverse();
}

/** Outputs past the first are only produced by Split and operators that say so (computesEveryOutput); anywhere else they must be unused. */
export function checkExtraOutputs(nodes: readonly NodeProto[], graphOutputs: readonly string[]): void {
  const read = new Set(graphOutputs);
  for (const node of nodes) for (const name of node.input) if (name) read.add(name);
  for (const node of nodes) {
    if (node.opType === 'Split' || operatorSpec(node)?.computesEveryOutput) continue;
    const extra = node.output.slice(1).find((name) => name && read.has(name));
    if (extra) throw unsupported(node, `output '${extra}' (only the first output is computed in inference)`);
  }
}
