/**
 * Outer-scope values of subgraphs: which names a subgraph reads from the scopes around it, which
 * of those it reads on the host, and the rewrite that makes them inputs of its If, Loop or Scan
 * node (laid out as ops/control-flow-layout.ts says), so that ordering, dead-node removal and
 * segmentation see them as the node's own.
 */
import { defaultOpsetVersion, type ModelProto, type NodeProto } from '../../onnx/model.ts';
import type { GraphProto } from '../../protocol/generated/onnx/onnx.ts';
import { controlFlowLayout, graphAttributeOf, PARAMETER_SLOTS, unsupported } from '../ops/index.ts';

const GRAPH_ATTRIBUTES: Readonly<Record<string, readonly string[]>> = { If: ['then_branch', 'else_branch'], Loop: ['body'], Scan: ['body'] };

const isDefaultDomain = (node: NodeProto): boolean => node.domain === '' || node.domain === 'ai.onnx';

/**
 * The names a subgraph reads from the scopes around it, in the order it first reads them: what
 * its nodes (and the subgraphs inside them) read that it neither takes as an input, holds as an
 * initializer nor computes.
 */
export function outerReferences(graph: GraphProto): string[] {
  const defined = new Set<string>([...graph.input.map((value) => value.name), ...graph.initializer.map((tensor) => tensor.name)]);
  for (const node of graph.node) for (const name of node.output) if (name) defined.add(name);
  const found = new Set<string>();
  const note = (name: string) => {
    if (name && !defined.has(name)) found.add(name);
  };
  for (const node of graph.node) {
    for (const name of node.input) note(name);
    for (const attribute of node.attribute) for (const inner of [attribute.g, ...attribute.graphs]) if (inner) outerReferences(inner).forEach(note);
  }
  return [...found];
}

/**
 * The outer values `graph` (and the subgraphs inside it) reads on the host: inputs at a parameter
 * index of its nodes (`hostReads`), and the conditions and trip counts of control flow inside it.
 */
function hostReadReferences(graph: GraphProto, hostReads: (node: NodeProto) => readonly number[]): Set<string> {
  const defined = new Set<string>([...graph.input.map((value) => value.name), ...graph.initializer.map((tensor) => tensor.name)]);
  for (const node of graph.node) for (const name of node.output) if (name) defined.add(name);
  const found = new Set<string>();
  const note = (name: string | undefined) => {
    if (name && !defined.has(name)) found.add(name);
  };
  for (const node of graph.node) {
    const nested = GRAPH_ATTRIBUTES[node.opType] && isDefaultDomain(node);
    const indices = nested ? (node.opType === 'Scan' ? [] : node.opType === 'Loop' ? [0, 1] : [0]) : hostReads(node);
    for (const index of indices) note(node.input[index]);
    for (const attribute of node.attribute) for (const inner of [attribute.g, ...attribute.graphs]) if (inner) hostReadReferences(inner, hostReads).forEach(note);
  }
  return found;
}

/**
 * The model with every top-level If, Loop and Scan laid out as ControlFlowLayout says, taking the
 * outer values its subgraphs read as inputs. Subgraphs' own control-flow nodes get theirs when
 * they compile. `hostReads` gives the inputs a node's operator reads on the host. FAILED_PRECONDITION for subgraphs reading more than PARAMETER_SLOTS outer values on the host.
 */
export function withSubgraphReferences(model: ModelProto, hostReads: (node: NodeProto) => readonly number[]): ModelProto {
  const graph = model.graph!;
  const opset = defaultOpsetVersion(model);
  if (!graph.node.some((node) => GRAPH_ATTRIBUTES[node.opType] && isDefaultDomain(node))) return model;
  const node = graph.node.map((entry) => {
    const names = GRAPH_ATTRIBUTES[entry.opType];
    if (!names || !isDefaultDomain(entry)) return entry;
    const layout = controlFlowLayout(entry);
    // Scan from opset 9 has no sequence_lens: its head is an empty name.
    const own = entry.opType === 'Scan' && opset >= 9 ? ['', ...entry.input] : [...entry.input];
    const length = layout.head + layout.outer - layout.tail;
    while (own.length < length) own.push('');
    const references = new Set<string>();
    const onHost = new Set<string>();
    for (const name of names) {
      const subgraph = graphAttributeOf(entry, name);
      for (const reference of outerReferences(subgraph)) references.add(reference);
      for (const reference of hostReadReferences(subgraph, hostReads)) onHost.add(reference);
    }
    if (onHost.size > PARAMETER_SLOTS) {
      throw unsupported(entry, `subgraphs reading ${onHost.size} outer values on the host (${[...onHost].join(', ')}), more than ${PARAMETER_SLOTS}`);
    }
    const slots = [...onHost, ...Array.from({ length: PARAMETER_SLOTS - onHost.size }, () => '')];
    const rest = [...references].filter((reference) => !onHost.has(reference));
    return { ...entry, input: [...own.slice(0, layout.head), ...slots, ...own.slice(layout.head, length), ...rest] };
  });
  return { ...model, graph: { ...graph, node } };
}

