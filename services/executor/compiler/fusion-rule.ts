/**
 * What every fusion rule is: a pure function from graph to graph. A rule never changes a
 * value's shape or what the graph computes; it only lets one GPU step do the work of several.
 */
import type { HostTensor } from '../../onnx/model.ts';
import { withConstants, type Graph, type GraphNode } from './graph.ts';
import type { ProbeShapes } from './shape-walk.ts';

/** What rules may ask besides the graph. */
export interface FusionContext {
  /**
   * Every value's shapes for two probe input shapes (computed on first use), or undefined when
   * the model refuses them; a rule that needs two values to have the same shape proves it here.
   */
  probe(): ProbeShapes | undefined;
}

export type FusionRule = (graph: Graph, context: FusionContext) => Graph;

/** What one rule decided: nodes replaced by their fused form, nodes absorbed, constants added. */
export interface FusionChange {
  readonly replaced: ReadonlyMap<GraphNode, GraphNode>;
  readonly absorbed: ReadonlySet<GraphNode>;
  readonly added?: ReadonlyArray<readonly [string, HostTensor]>;
  /** "Relu 'relu_3' into Conv 'conv_2'", one per absorbed node. */
  readonly fused: readonly string[];
}

/** The graph after `change`; `graph` itself is left as it was. */
export function applyFusion(graph: Graph, change: FusionChange): Graph {
  if (change.replaced.size === 0 && change.absorbed.size === 0) return graph;
  return {
    ...graph,
    ...withConstants(graph, change.added ?? []),
    nodes: graph.nodes.filter((entry) => !change.absorbed.has(entry)).map((entry) => change.replaced.get(entry) ?? entry),
    fused: [...graph.fused, ...change.fused],
  };
}
