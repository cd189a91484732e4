/**
 * Fusion rule: a MatMul reads an operand through a Transpose's permutation instead of its copy
 * (attention's heads split out of [N, S, heads, d]), saving a dispatch and a pass over the
 * operand. Any permutation is a strided view, so each one folds, but only when the Transpose's
 * one reader is this MatMul, its output is not a graph output, its input is computed on the
 * device (a constant B is re-laid out for the vec4 loader instead) and the perm is explicit.
 * Runs after the epilogues, whose fused MatMuls it extends.
 */
import type { NodeProto } from '../../onnx/model.ts';
import { IDENTITY } from '../kernels/index.ts';
import { intsAttribute } from '../ops/index.ts';
import { kindOf } from '../tensor/index.ts';
import { applyFusion } from './fusion-rule.ts';
import { describeNode, hasSingleReader, producersOf, readersOf, type Graph, type GraphNode } from './graph.ts';

/** The graph with every foldable Transpose read in place by the MatMul after it. */
export function fuseTransposeIntoMatMul(graph: Graph): Graph {
  const readers = readersOf(graph.nodes);
  const producers = producersOf(graph.nodes);
  const replaced = new Map<GraphNode, GraphNode>();
  const absorbed = new Set<GraphNode>();
  const fused: string[] = [];
  for (const matmul of graph.nodes) {
    if (matmul.host || matmul.node.opType !== 'MatMul' || absorbed.has(matmul)) continue;
    const folded: Array<{ index: number; transpose: GraphNode; perm: number[] }> = [];
    for (const index of [0, 1]) {
      const name = matmul.node.input[index];
      const transpose = name ? producers.get(name) : undefined;
      if (!transpose || transpose.host || transpose.node.opType !== 'Transpose') continue;
      if (transpose.fusion || absorbed.has(transpose) || replaced.has(transpose)) continue;
      if (!hasSingleReader(graph, readers, name)) continue;
      const source = transpose.node.input[0];
      if (!source || graph.constants.has(source) || graph.locations.get(source) === 'host') continue;
      if (kindOf(graph.datatypes.get(source) ?? 'FP32') !== 'float') continue;
      const perm = intsAttribute(transpose.node, 'perm');
      if (!perm || perm.length < 2) continue;
      folded.push({ index, transpose, perm });
    }
    if (folded.length === 0) continue;
    for (const { transpose } of folded) {
      absorbed.add(transpose);
      fused.push(`Transpose '${transpose.node.name}' into MatMul '${matmul.node.name}'`);
    }
    const a = folded.find(({ index }) => index === 0);
    const b = folded.find(({ index }) => index === 1);
    const input: NodeProto['input'] = [...matmul.node.input];
    if (a) input[0] = a.transpose.node.input[0];
    if (b) input[1] = b.transpose.node.input[0];
    const existing = matmul.fusion;
    replaced.set(matmul, {
      ...matmul,
      node: { ...matmul.node, input },
      fusion: {
        epilogue: { ...(existing?.epilogue ?? { activation: IDENTITY }), aPerm: a?.perm, bPerm: b?.perm },
        extraInputs: existing?.extraInputs ?? [],
        label: [...folded.map(({ transpose }) => describeNode(transpose.node)), existing?.label ?? describeNode(matmul.node)].join(' + '),
      },
    });
  }
  return applyFusion(graph, { replaced, absorbed, fused });
}
