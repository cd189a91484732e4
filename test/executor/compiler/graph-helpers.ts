/** Builds the compiler's graph for small models made in code, with no GPU involved. */
import type { GraphBuilder } from '../../../services/onnx/builder.ts';
import {
  buildSteps, placeModel, probeShapes, type FusionContext, type Graph, type PlacedModel,
} from '../../../services/executor/compiler/index.ts';

/** The placed (unfused) graph of `builder`'s model at `opset` (default 17). */
export function placed(builder: GraphBuilder, opset = 17): PlacedModel {
  return placeModel(builder.toModel({ opset }));
}

/** A fusion context whose probe walks `graph` unfused, as the compiler's pipeline does. */
export function contextFor(model: PlacedModel, graph: Graph = model.graph): FusionContext {
  return {
    probe: () => {
      const context = {
        opset: model.opset, precision: 'fp32' as const, traits: { gemmAlgorithm: 'tiled' as const },
        constants: new Map(graph.constants), datatypes: new Map(graph.datatypes), locations: new Map(graph.locations),
      };
      return probeShapes(buildSteps(graph, context), model.signature, context.constants);
    },
  };
}

/** "OpType:name" of every node, in graph order. */
export const nodeNames = (graph: Graph): string[] => graph.nodes.map((entry) => `${entry.node.opType}:${entry.node.name}`);

/** The fused label of the node named `name`, or undefined when it is not fused. */
export const labelOf = (graph: Graph, name: string): string | undefined => graph.nodes.find((entry) => entry.node.name === name)?.fusion?.label;
