/**
 * Fusion rule: a BatchNormalization that directly follows a Conv with constant weights is
 * folded into them: w' = w * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps).
 * Only when the Conv's output is read by the BatchNormalization alone and is not a graph output.
 */
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { floatAttribute, foldBatchNorm, intAttribute } from '../ops/index.ts';
import { kindOf, numberView } from '../tensor/index.ts';
import { applyFusion } from './fusion-rule.ts';
import { hasSingleReader, producersOf, readersOf, type Graph, type GraphNode } from './graph.ts';

const floats = (tensor: HostTensor) => Float32Array.from(numberView(tensor));

/** The graph with every foldable Conv -> BatchNormalization pair as one Conv. */
export function foldBatchNormIntoConv(graph: Graph): Graph {
  const readers = readersOf(graph.nodes);
  const producers = producersOf(graph.nodes);
  const replaced = new Map<GraphNode, GraphNode>();
  const absorbed = new Set<GraphNode>();
  const added: Array<[string, HostTensor]> = [];
  const fused: string[] = [];
  for (const bn of graph.nodes) {
    if (bn.host || bn.node.opType !== 'BatchNormalization') continue;
    const conv = producers.get(bn.node.input[0]);
    if (!conv || conv.host || conv.node.opType !== 'Conv' || conv.fusion || replaced.has(conv)) continue;
    const convOutput = conv.node.output[0];
    if (!hasSingleReader(graph, readers, convOutput)) continue;
    const weights = graph.constants.get(conv.node.input[1]);
    const bias = conv.node.input[2] ? graph.constants.get(conv.node.input[2]) : undefined;
    const statistics = bn.node.input.slice(1).map((name) => graph.constants.get(name));
    if (!weights || (conv.node.input[2] && !bias) || statistics.some((tensor) => !tensor)) continue;
    if (kindOf(weights.datatype) !== 'float' || intAttribute(bn.node, 'training_mode', 0) !== 0) continue;
    const [gamma, beta, mean, variance] = statistics.map((tensor) => floats(tensor!));
    const { scale, shift } = foldBatchNorm(gamma, beta, mean, variance, floatAttribute(bn.node, 'epsilon', 1e-5));
    const outChannels = weights.shape[0];
    if (scale.length !== outChannels) continue;
    const w = floats(weights);
    const perChannel = w.length / outChannels;
    const foldedWeights = new Float32Array(w.length);
    for (let index = 0; index < w.length; index++) foldedWeights[index] = w[index] * scale[Math.floor(index / perChannel)];
    const b = bias ? floats(bias) : new Float32Array(outChannels);
    const foldedBias = Float32Array.from(b, (value, channel) => value * scale[channel] + shift[channel]);
    const prefix = conv.node.name || convOutput;
    const weightsName = `${prefix}::bn_folded_weights`;
    const biasName = `${prefix}::bn_folded_bias`;
    added.push([weightsName, { datatype: 'FP32', shape: [...weights.shape], data: foldedWeights }]);
    added.push([biasName, { datatype: 'FP32', shape: [outChannels], data: foldedBias }]);
    const node: NodeProto = { ...conv.node, input: [conv.node.input[0], weightsName, biasName], output: [bn.node.output[0]] };
    replaced.set(conv, { ...conv, node });
    absorbed.add(bn);
    fused.push(`BatchNormalization '${bn.node.name}' into Conv '${conv.node.name}'`);
  }
  return applyFusion(graph, { replaced, absorbed, added, fused });
}
