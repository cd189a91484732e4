/**
 * What If, Loop and Scan nodes look like to the rest of the executor: their graph attributes, the
 * layout of their inputs once the compiler has added the outer values their subgraphs read
 * (compiler/subgraph-references.ts), and the types their subgraphs declare or imply. Pure: no
 * compiler is involved, so the operator registry can use it.
 */
import { datatypeOfOnnxCode, type Datatype } from '../../onnx/datatypes.ts';
import type { NodeProto } from '../../onnx/model.ts';
import type { GraphProto, ValueInfoProto } from '../../protocol/generated/onnx/onnx.ts';
import { invalidNode } from './attributes.ts';

/** A graph-valued attribute of `node`; FAILED_PRECONDITION when it is missing. */
export function graphAttributeOf(node: NodeProto, name: string): GraphProto {
  const graph = node.attribute.find((attribute) => attribute.name === name)?.g;
  if (!graph) throw invalidNode(node, `attribute '${name}' (a graph) is missing`);
  return graph;
}

/** Outer values a control-flow node's subgraphs may read on the host (its parameter slots). */
export const PARAMETER_SLOTS = 8;

/**
 * Where a control-flow node's inputs are once withSubgraphReferences has rewritten it: its own
 * leading parameters (If's condition, Loop's trip count and condition, Scan's sequence_lens or
 * an empty name), then PARAMETER_SLOTS outer values its subgraphs read on the host ('' where
 * unused), then the rest of its own inputs (Loop's carried values, Scan's states and scan
 * inputs), then every other outer value. The parameters and slots are fixed indices, so the
 * spec's `parameters` can name them: the run reads them on the host like any parameter (from
 * the request, or read back from the GPU at a segment boundary).
 */
export interface ControlFlowLayout {
  /** Own leading parameters: 1 for If and Scan, 2 for Loop. */
  readonly head: number;
  /** Where the rest of the node's own inputs start. */
  readonly tail: number;
  /** Where the outer values read only on the GPU start. */
  readonly outer: number;
}

export function controlFlowLayout(node: NodeProto): ControlFlowLayout {
  const head = node.opType === 'Loop' ? 2 : 1;
  const rest = node.opType === 'If' ? 0 : graphAttributeOf(node, 'body').input.length - (node.opType === 'Loop' ? 2 : 0);
  return { head, tail: head + PARAMETER_SLOTS, outer: head + PARAMETER_SLOTS + rest };
}

/** Indices of the parameter inputs of a rewritten control-flow node (its own and its slots). */
export const parameterIndices = (head: number): number[] => Array.from({ length: head + PARAMETER_SLOTS }, (_, index) => index);

/** The outer values a rewritten control-flow node binds to its subgraphs, by input index (slots, then the rest). */
export function outerIndices(node: NodeProto, layout: ControlFlowLayout): number[] {
  const slots = Array.from({ length: PARAMETER_SLOTS }, (_, index) => layout.head + index).filter((index) => node.input[index]);
  return [...slots, ...Array.from({ length: node.input.length - layout.outer }, (_, index) => layout.outer + index)];
}

/** The datatype a subgraph value declares, if it declares one. */
export function declaredDatatype(value: ValueInfoProto | undefined): Datatype | undefined {
  const code = value?.type?.tensorType?.elemType;
  if (!code) return undefined;
  try {
    return datatypeOfOnnxCode(code);
  } catch {
    return undefined;
  }
}

/** Operators whose output 0 has input 0's type. */
const SAME_TYPE = new Set([
  'Identity', 'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Abs', 'Relu', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Sqrt', 'Min', 'Max', 'Sum', 'Reshape', 'Squeeze',
  'Unsqueeze', 'Concat', 'Slice', 'Gather', 'Transpose', 'Expand', 'Tile', 'Flatten', 'MatMul', 'Gemm', 'Where',
]);
const BOOL_RESULT = new Set(['Equal', 'Less', 'LessOrEqual', 'Greater', 'GreaterOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);

/**
 * The type of a subgraph value that declares none (expanded functions leave Loop's scan outputs
 * untyped), followed through its producers back to something typed: `known` gives the body's
 * inputs and outer values. Undefined where the chain leads somewhere this does not follow.
 */
export function inferredDatatype(graph: GraphProto, name: string, known: ReadonlyMap<string, Datatype>, depth = 0): Datatype | undefined {
  const found = known.get(name) ?? declaredDatatype(graph.input.find((value) => value.name === name))
    ?? declaredDatatype(graph.output.find((value) => value.name === name) ?? graph.valueInfo.find((value) => value.name === name));
  if (found) return found;
  const initializer = graph.initializer.find((tensor) => tensor.name === name);
  if (initializer) return datatypeOfOnnxCode(initializer.dataType);
  const producer = graph.node.find((node) => node.output[0] === name);
  if (!producer || depth > 64) return undefined;
  const attribute = (key: string) => producer.attribute.find((entry) => entry.name === key);
  if (producer.opType === 'Cast') return datatypeOfOnnxCode(Number(attribute('to')?.i ?? 0));
  if (producer.opType === 'Constant') return attribute('value')?.t ? datatypeOfOnnxCode(attribute('value')!.t!.dataType) : undefined;
  if (producer.opType === 'Shape' || producer.opType === 'Size') return 'INT64';
  if (BOOL_RESULT.has(producer.opType)) return 'BOOL';
  if (producer.opType === 'Where') return inferredDatatype(graph, producer.input[1], known, depth + 1);
  if (SAME_TYPE.has(producer.opType)) return inferredDatatype(graph, producer.input[0], known, depth + 1);
  return undefined;
}

/** The dims a subgraph value declares, when every one is a fixed size. */
export function declaredShape(value: ValueInfoProto | undefined): number[] | undefined {
  const dims = value?.type?.tensorType?.shape?.dim;
  if (!dims || dims.some((dim) => dim.dimValue === undefined)) return undefined;
  return dims.map((dim) => Number(dim.dimValue));
}

