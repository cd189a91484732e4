/**
 * A Loop whose body computes its condition from data (a value only the GPU knows) cannot decide
 * on the host, while planning, how many iterations run. With a trip count it is rewritten before
 * placement into a Loop that runs every one of its M iterations and masks the ones after the
 * condition turned false:
 *
 *   alive_0 = cond;  each iteration: alive_out = alive_in AND cond_out,
 *                                    v_out' = Where(alive_in, v_out, v_in)
 *
 * so the carried values stop changing exactly where the original loop stopped. Every scan output
 * is stacked for all M iterations, with the alive flags beside them; after the loop, the rows of
 * iterations that ran (the flags' sum, read back from the GPU at a segment boundary) are sliced
 * off. The rewritten loop's own condition is always true, so it plans on the host. Dead
 * iterations still compute: their results are discarded. A loop without a trip count keeps its
 * refusal (control-flow.ts): it could run without end.
 */
import type { AttributeProto, ModelProto, NodeProto } from '../../onnx/model.ts';
import { defaultOpsetVersion } from '../../onnx/model.ts';
import type { GraphProto, ValueInfoProto } from '../../protocol/generated/onnx/onnx.ts';

const isLoop = (node: NodeProto): boolean => node.opType === 'Loop' && (node.domain === '' || node.domain === 'ai.onnx');

/** The model with every Loop that has a trip count and a data-dependent condition masked (the model itself when there is none). */
export function withMaskedLoopConditions(model: ModelProto): ModelProto {
  const graph = model.graph!;
  const opset = defaultOpsetVersion(model);
  // Slice takes its ends as an input from opset 10, ReduceSum its axes from 13.
  // Outer values known at load fold into the body: a condition from them is the host's.
  const outerConstants = new Set([...graph.initializer.map((tensor) => tensor.name), ...graph.node.filter((node) => node.opType === 'Constant').map((node) => node.output[0])]);
  if (opset < 13 || !graph.node.some((node) => isLoop(node) && needsMask(node, outerConstants))) return model;
  const node = graph.node.flatMap((entry) => (isLoop(entry) && needsMask(entry, outerConstants) ? masked(entry) : [entry]));
  return { ...model, graph: { ...graph, node } };
}

function bodyOf(node: NodeProto): GraphProto | undefined {
  return node.attribute.find((attribute) => attribute.name === 'body')?.g;
}

/** A trip count, and a body condition that depends on more than the iteration number, the incoming condition, constants and shapes. */
function needsMask(node: NodeProto, outerConstants: ReadonlySet<string>): boolean {
  const body = bodyOf(node);
  if (!node.input[0] || !body || body.input.length < 2 || body.output.length < 1) return false;
  const hostInputs = new Set(body.input.slice(0, 2).map((value) => value.name));
  // A body input shadows an outer constant of its name.
  const inputs = new Set(body.input.map((value) => value.name));
  const constants = new Set([...body.initializer.map((tensor) => tensor.name), ...[...outerConstants].filter((name) => !inputs.has(name))]);
  const producers = new Map<string, NodeProto>();
  for (const inner of body.node) for (const name of inner.output) producers.set(name, inner);
  const seen = new Set<string>();
  const fromData = (name: string): boolean => {
    if (!name || hostInputs.has(name) || constants.has(name) || seen.has(name)) return false;
    seen.add(name);
    const producer = producers.get(name);
    // A carried value or an outer one computed at run time: data.
    if (!producer) return true;
    if (producer.opType === 'Constant' || producer.opType === 'Shape' || producer.opType === 'Size') return false;
    return producer.input.some(fromData);
  };
  return fromData(body.output[0].name);
}

function masked(node: NodeProto): NodeProto[] {
  const body = bodyOf(node)!;
  const prefix = `${node.name || node.output[0]}::masked`;
  const carried = body.input.length - 2;
  const scans = body.output.length - 1 - carried;
  const [iteration, conditionIn] = body.input;
  const aliveIn = `${prefix}::alive_in`;
  const aliveOut = `${prefix}::alive_out`;
  const conditionKept = `${prefix}::condition`;
  const aliveRow = `${prefix}::alive_row`;
  const selected = body.input.slice(2).map((value) => `${prefix}::${value.name}::selected`);
  const make = (opType: string, input: string[], output: string, attribute: AttributeProto[] = []): NodeProto =>
    ({ opType, input, output: [output], name: `${prefix}::${output}`, domain: '', docString: '', attribute });
  const maskedBody: GraphProto = {
    ...body,
    input: [iteration, conditionIn, untyped(aliveIn), ...body.input.slice(2)],
    node: [
      ...body.node,
      make('And', [aliveIn, body.output[0].name], aliveOut),
      ...body.input.slice(2).map((value, index) => make('Where', [aliveIn, body.output[1 + index].name, value.name], selected[index])),
      make('Identity', [conditionIn.name], conditionKept),
      make('Identity', [aliveIn], aliveRow),
    ],
    output: [
      untyped(conditionKept), untyped(aliveOut), ...body.output.slice(1, 1 + carried).map((value, index) => ({ ...value, name: selected[index] })),
      ...body.output.slice(1 + carried), untyped(aliveRow),
    ],
  };
  const initialAlive = node.input[1] || `${prefix}::always`;
  const nodes: NodeProto[] = [];
  if (!node.input[1]) nodes.push(make('Constant', [], initialAlive, [boolTensorAttribute('value', true)]));
  const fullScans = node.output.slice(carried).map((name, index) => `${prefix}::scan_${index}_${name}`);
  const aliveRows = `${prefix}::alive_rows`;
  nodes.push({
    ...node, input: [node.input[0], '', initialAlive, ...node.input.slice(2)],
    output: [`${prefix}::alive_final`, ...node.output.slice(0, carried), ...fullScans, aliveRows],
    attribute: node.attribute.map((attribute) => (attribute.name === 'body' ? { ...attribute, g: maskedBody } : attribute)),
  });
  if (scans === 0) return nodes;
  // The iterations that ran: the alive flags' sum, as the end of every scan output's slice.
  nodes.push(
    make('Cast', [aliveRows], `${prefix}::alive_counts`, [intAttribute('to', 1)]),
    make('ReduceSum', [`${prefix}::alive_counts`], `${prefix}::ran_float`, [intAttribute('keepdims', 1)]),
    make('Cast', [`${prefix}::ran_float`], `${prefix}::ran`, [intAttribute('to', 7)]),
    make('Constant', [], `${prefix}::zero`, [int64TensorAttribute('value', 0)]),
    make('Constant', [], `${prefix}::axis`, [int64TensorAttribute('value', 0)]),
  );
  node.output.slice(carried).forEach((name, index) => {
    if (name) nodes.push(make('Slice', [fullScans[index], `${prefix}::zero`, `${prefix}::ran`, `${prefix}::axis`], name));
  });
  return nodes;
}

const untyped = (name: string): ValueInfoProto => ({ name, docString: '', type: undefined });

function attribute(name: string, fields: Partial<AttributeProto>): AttributeProto {
  return { name, type: 0, f: 0, i: 0, s: new Uint8Array(), t: undefined, g: undefined, floats: [], ints: [], strings: [], tensors: [], graphs: [], ...fields };
}

const intAttribute = (name: string, value: number): AttributeProto => attribute(name, { type: 2, i: value });

function tensorAttribute(name: string, dataType: number, dims: number[], rawData: Uint8Array): AttributeProto {
  return attribute(name, {
    type: 4,
    t: { name: '', dims, dataType, rawData, floatData: [], int32Data: [], stringData: [], int64Data: [], doubleData: [], uint64Data: [], docString: '', externalData: [], dataLocation: 0 },
  });
}

const boolTensorAttribute = (name: string, value: boolean): AttributeProto => tensorAttribute(name, 9, [], Uint8Array.of(value ? 1 : 0));
const int64TensorAttribute = (name: string, value: number): AttributeProto => tensorAttribute(name, 7, [1], new Uint8Array(BigInt64Array.of(BigInt(value)).buffer));
