/**
 * Fusion rule: a Softmax / LogSoftmax takes over the Mul / Div by a constant before it
 * (attention's scores / sqrt(d)): the factor goes into the softmax kernel, which reads the Mul /
 * Div's input instead, saving a dispatch and a pass over the scores. Only when the product's one
 * reader is the softmax, it is not a graph output, and (for a constant of rank > 0) the product
 * provably has the scaled input's shape (a [1, 1, 1, 1, 1] factor would add dims, which moves a
 * softmax axis).
 */
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { IDENTITY } from '../kernels/index.ts';
import { kindOf, sameShape, toNumbers } from '../tensor/index.ts';
import { applyFusion, type FusionContext } from './fusion-rule.ts';
import { describeNode, hasSingleReader, producersOf, readersOf, type Graph, type GraphNode } from './graph.ts';

const SCALED_SOFTMAX = new Set(['Softmax', 'LogSoftmax']);

/**
 * The factor of a Mul / Div by a single-value float constant, and the input it scales; undefined
 * for anything else (a Div of a constant by a tensor, a zero or non-finite factor).
 */
function scaleOf(node: NodeProto, constants: ReadonlyMap<string, HostTensor>): { factor: number; input: string; constant: HostTensor } | undefined {
  if ((node.opType !== 'Mul' && node.opType !== 'Div') || node.input.length !== 2) return undefined;
  const candidates = node.opType === 'Div' ? [1] : [1, 0];
  for (const index of candidates) {
    const constant = constants.get(node.input[index]);
    const input = node.input[1 - index];
    if (!constant || constants.has(input) || kindOf(constant.datatype) !== 'float' || constant.shape.some((dim) => dim !== 1)) continue;
    const value = toNumbers(constant)[0];
    const factor = node.opType === 'Div' ? 1 / value : value;
    if (value === 0 || !Number.isFinite(value) || !Number.isFinite(factor)) continue;
    return { factor, input, constant };
  }
  return undefined;
}

/** The graph with every scalable softmax fused with the scaling before it. */
export function fuseSoftmaxScale(graph: Graph, context: FusionContext): Graph {
  const readers = readersOf(graph.nodes);
  const producers = producersOf(graph.nodes);
  const replaced = new Map<GraphNode, GraphNode>();
  const absorbed = new Set<GraphNode>();
  const fused: string[] = [];
  for (const softmax of graph.nodes) {
    if (softmax.host || !SCALED_SOFTMAX.has(softmax.node.opType) || softmax.fusion || replaced.has(softmax)) continue;
    const scaledName = softmax.node.input[0];
    const producer = producers.get(scaledName);
    if (!producer || producer.host || producer.fusion || absorbed.has(producer) || replaced.has(producer)) continue;
    if (!hasSingleReader(graph, readers, scaledName)) continue;
    if (kindOf(producer.outputTypes[0]) !== 'float') continue;
    const scale = scaleOf(producer.node, graph.constants);
    if (!scale || kindOf(graph.datatypes.get(scale.input) ?? 'FP32') !== 'float') continue;
    if (scale.constant.shape.length > 0) {
      const shapes = context.probe();
      if (!shapes || !shapes.every((walk) => sameShape(walk.get(scale.input), walk.get(scaledName)))) continue;
    }
    absorbed.add(producer);
    fused.push(`${producer.node.opType} '${producer.node.name}' into ${softmax.node.opType} '${softmax.node.name}'`);
    replaced.set(softmax, {
      ...softmax,
      node: { ...softmax.node, input: [scale.input, ...softmax.node.input.slice(1)] },
      fusion: { epilogue: { activation: IDENTITY, inputScale: scale.factor }, extraInputs: [], label: `${describeNode(producer.node)} + ${describeNode(softmax.node)}` },
    });
  }
  return applyFusion(graph, { replaced, absorbed, fused });
}
