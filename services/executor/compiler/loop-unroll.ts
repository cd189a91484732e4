/**
 * A Loop that carries a sequence (a list appended to in each iteration, as exported `for` loops
 * over Python lists are) is unrolled at load into its iterations' nodes, so that the sequence is
 * known at load in each of them (sequences.ts). That needs the trip count to be a constant, no
 * incoming condition, and a body that passes its condition through; up to MAX_UNROLLED
 * iterations. Each iteration's values are renamed `<loop>::iteration_<k>::<name>`, the iteration
 * number becomes a constant, and scan outputs are stacked with Unsqueeze and Concat.
 */
import { tensorFromProto, type AttributeProto, type HostTensor, type NodeProto } from '../../onnx/model.ts';
import type { GraphProto } from '../../protocol/generated/onnx/onnx.ts';
import { invalidNode, unsupported } from '../ops/index.ts';
import { toNumbers } from '../tensor/index.ts';

/** Iterations a Loop carrying a sequence may unroll to at load. */
export const MAX_UNROLLED = 1024;

interface UnrollContext {
  readonly constants: ReadonlyMap<string, HostTensor>;
  readonly opset: number;
  /** Registers a constant (an initializer of the graph) and returns its name. */
  constant(name: string, tensor: HostTensor): string;
}

/** The nodes of `node`'s iterations, in order, ending in the nodes that give the Loop's outputs. */
export function unrolledLoop(node: NodeProto, context: UnrollContext): NodeProto[] {
  const body = node.attribute.find((attribute) => attribute.name === 'body')?.g;
  if (!body || body.input.length < 2) throw invalidNode(node, 'a Loop needs a body with the iteration number and condition inputs');
  const trips = node.input[0] ? context.constants.get(node.input[0]) : undefined;
  if (!trips) throw unsupported(node, 'a sequence carried through a Loop whose trip count is not a constant (the loop is unrolled at load)');
  const count = Number(toNumbers(trips)[0]);
  if (count > MAX_UNROLLED) throw unsupported(node, `a sequence carried through ${count} iterations, more than the ${MAX_UNROLLED} unrolled at load`);
  if (node.input[1]) throw unsupported(node, 'a sequence carried through a Loop with an incoming condition (the loop is unrolled at load)');
  const [iteration, condition] = body.input.map((value) => value.name);
  const conditionOut = body.output[0].name;
  const passesCondition = conditionOut === condition
    || body.node.some((inner) => inner.opType === 'Identity' && inner.input[0] === condition && inner.output[0] === conditionOut);
  if (!passesCondition) throw unsupported(node, `a sequence carried through a Loop whose body computes its condition (${conditionOut})`);

  const carried = body.input.length - 2;
  const scans = body.output.length - 1 - carried;
  const prefix = node.name || node.output[0];
  const defined = new Set<string>([...body.initializer.map((tensor) => tensor.name)]);
  for (const inner of body.node) for (const name of inner.output) if (name) defined.add(name);
  const nodes: NodeProto[] = [];
  let state = node.input.slice(2, 2 + carried);
  const rows: string[][] = Array.from({ length: scans }, () => []);
  const truth = context.constant(`${prefix}::condition`, { datatype: 'BOOL', shape: [], data: Uint8Array.of(1) });
  for (let index = 0; index < count; index++) {
    const names = new Map<string, string>();
    names.set(iteration, context.constant(`${prefix}::iteration_${index}`, { datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(index)) }));
    names.set(condition, truth);
    body.input.slice(2).forEach((value, at) => names.set(value.name, state[at]));
    for (const name of defined) names.set(name, `${prefix}::iteration_${index}::${name}`);
    for (const tensor of body.initializer) context.constant(names.get(tensor.name)!, tensorFromProto(tensor));
    const rename = (name: string) => (name ? names.get(name) ?? name : name);
    for (const inner of body.node) {
      nodes.push({
        ...inner, name: `${prefix}::iteration_${index}::${inner.name || inner.output[0]}`, input: inner.input.map(rename), output: inner.output.map(rename),
        attribute: inner.attribute.map((attribute) => renamedAttribute(attribute, names)),
      });
    }
    state = body.output.slice(1, 1 + carried).map((value) => rename(value.name));
    body.output.slice(1 + carried).forEach((value, at) => rows[at].push(rename(value.name)));
  }
  const identity = (input: string, output: string): NodeProto =>
    ({ opType: 'Identity', input: [input], output: [output], name: `${prefix}::${output}`, domain: '', docString: '', attribute: [] });
  node.output.slice(0, carried).forEach((output, at) => {
    if (output) nodes.push(identity(state[at], output));
  });
  node.output.slice(carried).forEach((output, at) => {
    if (!output) return;
    if (count === 0) throw unsupported(node, 'scan outputs of a Loop unrolled at load to no iterations (their shape is unknown)');
    const axes = context.constant(`${prefix}::${output}::axes`, { datatype: 'INT64', shape: [1], data: BigInt64Array.of(0n) });
    const stacked = rows[at].map((row, index) => {
      const name = `${prefix}::${output}::row_${index}`;
      nodes.push(context.opset < 13
        ? { ...identity(row, name), opType: 'Unsqueeze', attribute: [intsAttribute('axes', [0])] }
        : { ...identity(row, name), opType: 'Unsqueeze', input: [row, axes] });
      return name;
    });
    nodes.push({ ...identity(stacked[0], output), opType: 'Concat', input: stacked, attribute: [intAttribute('axis', 0)] });
  });
  return nodes;
}

/** A subgraph attribute with the outer names it reads renamed (names it defines itself shadow them). */
function renamedAttribute(attribute: AttributeProto, names: ReadonlyMap<string, string>): AttributeProto {
  if (!attribute.g && attribute.graphs.length === 0) return attribute;
  return { ...attribute, g: attribute.g && renamedGraph(attribute.g, names), graphs: attribute.graphs.map((graph) => renamedGraph(graph, names)) };
}

function renamedGraph(graph: GraphProto, names: ReadonlyMap<string, string>): GraphProto {
  const own = new Set<string>([...graph.input.map((value) => value.name), ...graph.initializer.map((tensor) => tensor.name)]);
  for (const node of graph.node) for (const name of node.output) own.add(name);
  const visible = new Map([...names].filter(([name]) => !own.has(name)));
  const rename = (name: string) => visible.get(name) ?? name;
  return {
    ...graph,
    node: graph.node.map((node) => ({ ...node, input: node.input.map(rename), attribute: node.attribute.map((attribute) => renamedAttribute(attribute, visible)) })),
    output: graph.output.map((value) => ({ ...value, name: rename(value.name) })),
  };
}

function attribute(name: string, fields: Partial<AttributeProto>): AttributeProto {
  return { name, type: 0, f: 0, i: 0, s: new Uint8Array(), t: undefined, g: undefined, floats: [], ints: [], strings: [], tensors: [], graphs: [], ...fields };
}

const intAttribute = (name: string, value: number): AttributeProto => attribute(name, { type: 2, i: value });
const intsAttribute = (name: string, values: number[]): AttributeProto => attribute(name, { type: 7, ints: values });
