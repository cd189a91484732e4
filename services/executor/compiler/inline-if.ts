/**
 * An If whose condition is a constant (an initializer or a Constant node) is replaced by the
 * nodes of the branch it takes, before placement: the branch then folds, fuses and is planned
 * with the rest of the graph, and costs no copies. Its outputs become Identities of the branch's
 * outputs. A branch defining a name the graph already uses stays an If (control-flow.ts runs it
 * with its condition known at load).
 */
import type { ModelProto, NodeProto } from '../../onnx/model.ts';
import { tensorFromProto } from '../../onnx/model.ts';
import type { GraphProto } from '../../protocol/generated/onnx/onnx.ts';
import { numberView } from '../tensor/index.ts';

const isConstantIf = (node: NodeProto): boolean => node.opType === 'If' && (node.domain === '' || node.domain === 'ai.onnx');

/** The model with every If on a constant condition inlined (the model itself when there is none). */
export function withConstantIfsInlined(model: ModelProto): ModelProto {
  const graph = model.graph!;
  if (!graph.node.some(isConstantIf)) return model;
  const conditions = new Map<string, boolean>();
  const truth = (tensor: Parameters<typeof tensorFromProto>[0]) => {
    const values = numberView(tensorFromProto(tensor));
    return values.length === 1 ? values[0] !== 0 : undefined;
  };
  const noteCondition = (name: string, tensor: Parameters<typeof tensorFromProto>[0]) => {
    const value = truth(tensor);
    if (value !== undefined) conditions.set(name, value);
  };
  for (const tensor of graph.initializer) noteCondition(tensor.name, tensor);
  const used = new Set<string>([...graph.input.map((value) => value.name), ...graph.initializer.map((tensor) => tensor.name)]);
  for (const node of graph.node) for (const name of node.output) used.add(name);
  const initializer = [...graph.initializer];
  const nodes: NodeProto[] = [];
  let changed = false;
  const visit = (node: NodeProto) => {
    if (node.opType === 'Constant' && node.attribute.length === 1 && node.attribute[0].name === 'value' && node.attribute[0].t) {
      noteCondition(node.output[0], node.attribute[0].t);
    }
    const taken = isConstantIf(node) ? conditions.get(node.input[0]) : undefined;
    const branch = taken === undefined ? undefined : node.attribute.find((attribute) => attribute.name === (taken ? 'then_branch' : 'else_branch'))?.g;
    if (!branch || branch.output.length !== node.output.length || definesUsedName(branch, used)) {
      nodes.push(node);
      return;
    }
    changed = true;
    for (const tensor of branch.initializer) used.add(tensor.name);
    for (const inner of branch.node) for (const name of inner.output) used.add(name);
    initializer.push(...branch.initializer);
    for (const inner of branch.node) visit(inner);
    branch.output.forEach((value, index) => {
      const output = node.output[index];
      if (!output || output === value.name) return;
      nodes.push({ opType: 'Identity', input: [value.name], output: [output], name: `${node.name || output}::${value.name}`, domain: '', docString: '', attribute: [] });
    });
  };
  for (const node of graph.node) visit(node);
  return changed ? { ...model, graph: { ...graph, node: nodes, initializer } } : model;
}

function definesUsedName(branch: GraphProto, used: ReadonlySet<string>): boolean {
  return branch.initializer.some((tensor) => used.has(tensor.name)) || branch.node.some((node) => node.output.some((name) => name && used.has(name)));
}
