/**
 * Sequence and optional values, as compile-time values inside a graph. The KServe v2 protocol
 * carries tensors only, so a model whose graph inputs or outputs are sequences, optionals or maps
 * cannot be served: it is refused at load, naming the value. Inside a graph a sequence is known at
 * load as a list of tensor values and an optional as present or absent: the sequence operators
 * are rewritten before placement into the tensor operators they stand for (SequenceAt into an
 * Identity of the element, ConcatFromSequence into a Concat, SplitToSequence into a Split,
 * SequenceLength and OptionalHasElement into constants), so nothing at run time knows about them.
 * That needs every position and split they take to be a constant, and the number of pieces
 * SplitToSequence makes to be known at load. A Loop carrying a sequence is unrolled at load
 * (loop-unroll.ts); a sequence an If returns, one read inside a subgraph or reaching any other
 * operator is refused.
 */
import type { AttributeProto, HostTensor, ModelProto, NodeProto } from '../../onnx/model.ts';
import { defaultOpsetVersion, tensorFromProto } from '../../onnx/model.ts';
import { tensorProto } from '../../onnx/builder.ts';
import { failedPrecondition } from '../../domain/errors.ts';
import { intAttribute, invalidNode, unsupported } from '../ops/attributes.ts';
import { toNumbers } from '../tensor/index.ts';
import { unrolledLoop } from './loop-unroll.ts';
import { outerReferences } from './subgraph-references.ts';

/** FAILED_PRECONDITION naming the first graph input or output that is not a tensor. */
export function checkTensorSignature(model: ModelProto): void {
  const graph = model.graph!;
  const initializers = new Set(graph.initializer.map((tensor) => tensor.name));
  for (const [kind, values] of [['input', graph.input.filter((value) => !initializers.has(value.name))], ['output', graph.output]] as const) {
    for (const value of values) {
      if (value.type && !value.type.tensorType) {
        throw failedPrecondition(
          `graph ${kind} '${value.name}' is not a tensor (a sequence, optional or map value): KServe v2 requests and responses carry tensors only, ` +
          'so such a value can only live inside the graph',
        );
      }
    }
  }
}

/** The first opset of each operator rewritten here. */
const SINCE: Readonly<Record<string, number>> = {
  SequenceEmpty: 11, SequenceConstruct: 11, SequenceInsert: 11, SequenceErase: 11, SequenceAt: 11, SequenceLength: 11,
  SplitToSequence: 11, ConcatFromSequence: 11, Optional: 15, OptionalHasElement: 15, OptionalGetElement: 15,
};

const isDefaultDomain = (node: NodeProto): boolean => node.domain === '' || node.domain === 'ai.onnx';

/** What the rewrite knows at each point of the graph. */
interface Known {
  readonly sequences: Map<string, string[]>;
  /** An optional's element, or null when it is absent. */
  readonly optionals: Map<string, string | null>;
  readonly constants: Map<string, HostTensor>;
  /** Dims of the graph inputs and initializers, where fixed (SplitToSequence's piece count). */
  readonly dims: Map<string, number[]>;
}

/** The model with its sequence and optional operators rewritten into tensor operators (the model itself when it has none). */
export function withoutSequences(model: ModelProto): ModelProto {
  const graph = model.graph!;
  if (!graph.node.some((node) => SINCE[node.opType] !== undefined && isDefaultDomain(node))) return model;
  const opset = defaultOpsetVersion(model);
  const known: Known = { sequences: new Map(), optionals: new Map(), constants: new Map(), dims: new Map() };
  for (const tensor of graph.initializer) {
    known.constants.set(tensor.name, tensorFromProto(tensor));
    known.dims.set(tensor.name, tensor.dims.map(Number));
  }
  for (const value of graph.input) {
    const dims = value.type?.tensorType?.shape?.dim;
    if (dims && dims.every((dim) => dim.dimValue !== undefined)) known.dims.set(value.name, dims.map((dim) => Number(dim.dimValue)));
  }
  const nodes: NodeProto[] = [];
  const initializers = [...graph.initializer];
  const emit = (node: NodeProto, opType: string, input: string[], output: string | string[], attribute: AttributeProto[] = []) =>
    nodes.push({
      opType, input, output: typeof output === 'string' ? [output] : output, name: `${node.name || node.output[0]}::${opType}_${nodes.length}`, domain: '', docString: '', attribute,
    });
  const addConstant = (node: NodeProto, suffix: string, tensor: HostTensor): string => {
    const name = `${node.name || node.output[0]}::${suffix}`;
    initializers.push(tensorProto(name, tensor.datatype, tensor.shape, tensor.data));
    known.constants.set(name, tensor);
    return name;
  };
  const constantNamed = (name: string, tensor: HostTensor): string => {
    initializers.push(tensorProto(name, tensor.datatype, tensor.shape, tensor.data));
    known.constants.set(name, tensor);
    return name;
  };
  // A worklist: an unrolled Loop's nodes are rewritten next, in order.
  const queue = [...graph.node];
  for (let node = queue.shift(); node; node = queue.shift()) {
    if (node.opType === 'Constant' && node.attribute[0]?.t) known.constants.set(node.output[0], tensorFromProto(node.attribute[0].t));
    const isSequence = (name: string) => known.sequences.has(name) || known.optionals.has(name);
    if (node.opType === 'Identity' && known.sequences.has(node.input[0])) {
      known.sequences.set(node.output[0], known.sequences.get(node.input[0])!);
      continue;
    }
    if (node.opType === 'Loop' && isDefaultDomain(node) && node.input.slice(2).some(isSequence)) {
      queue.unshift(...unrolledLoop(node, { constants: known.constants, opset, constant: constantNamed }));
      continue;
    }
    if (SINCE[node.opType] === undefined || !isDefaultDomain(node)) {
      const carried = node.input.find((name) => known.sequences.has(name) || known.optionals.has(name));
      if (carried) throw unsupported(node, `the sequence or optional value '${carried}' as an input (only the sequence operators take one)`);
      const subgraphs = node.attribute.flatMap((attribute) => [attribute.g, ...attribute.graphs]).filter((inner) => inner !== undefined);
      const read = subgraphs.flatMap(outerReferences).find((name) => known.sequences.has(name) || known.optionals.has(name));
      if (read) throw unsupported(node, `a subgraph reading the sequence or optional value '${read}' (sequences are known at load only outside subgraphs)`);
      nodes.push(node);
      continue;
    }
    if (opset < SINCE[node.opType]) throw failedPrecondition(`operator '${node.opType}' (node '${node.name}') does not exist at opset ${opset}: ONNX defines it from opset ${SINCE[node.opType]}`);
    rewrite(node, opset, known, { emit: (...args) => emit(node, ...args), constant: (suffix, tensor) => addConstant(node, suffix, tensor) });
  }
  for (const output of graph.output) {
    if (known.sequences.has(output.name) || known.optionals.has(output.name)) {
      throw failedPrecondition(`graph output '${output.name}' is a sequence or optional value: KServe v2 responses carry tensors only`);
    }
  }
  return { ...model, graph: { ...graph, node: nodes, initializer: initializers } };
}

interface Emitter {
  emit(opType: string, input: string[], output: string | string[], attribute?: AttributeProto[]): void;
  constant(suffix: string, tensor: HostTensor): string;
}

function rewrite(node: NodeProto, opset: number, known: Known, out: Emitter): void {
  const [output] = node.output;
  const sequenceOf = (name: string | undefined): string[] => {
    const sequence = name ? known.sequences.get(name) : undefined;
    if (!sequence) throw unsupported(node, `input '${name ?? ''}' that is not a sequence known at load`);
    return sequence;
  };
  const position = (index: number, length: number, fallback: number, allowEnd: boolean): number => {
    const name = node.input[index];
    if (!name) return fallback;
    const tensor = known.constants.get(name);
    if (!tensor) throw unsupported(node, `position '${name}' computed at run time (a sequence's positions must be constants)`);
    const value = Number(toNumbers(tensor)[0]);
    const upper = allowEnd ? length : length - 1;
    if (value < -length || value > upper) throw invalidNode(node, `position ${value} is out of range for a sequence of ${length}`);
    return value < 0 ? value + length : value;
  };
  switch (node.opType) {
    case 'SequenceEmpty':
      known.sequences.set(output, []);
      return;
    case 'SequenceConstruct':
      known.sequences.set(output, [...node.input]);
      return;
    case 'SequenceInsert': {
      const sequence = sequenceOf(node.input[0]);
      const at = position(2, sequence.length, sequence.length, true);
      known.sequences.set(output, [...sequence.slice(0, at), node.input[1], ...sequence.slice(at)]);
      return;
    }
    case 'SequenceErase': {
      const sequence = sequenceOf(node.input[0]);
      const at = position(1, sequence.length, sequence.length - 1, false);
      known.sequences.set(output, sequence.filter((_, index) => index !== at));
      return;
    }
    case 'SequenceAt': {
      const sequence = sequenceOf(node.input[0]);
      out.emit('Identity', [sequence[position(1, sequence.length, 0, false)]], output);
      return;
    }
    case 'SequenceLength': {
      const length = scalarInt64(sequenceOf(node.input[0]).length);
      // Known here too, for positions computed from it.
      known.constants.set(output, length);
      out.emit('Identity', [out.constant('length', length)], output);
      return;
    }
    case 'ConcatFromSequence': {
      const sequence = sequenceOf(node.input[0]);
      if (sequence.length === 0) throw invalidNode(node, 'an empty sequence has nothing to concatenate');
      const axis = intAttribute(node, 'axis', 0);
      if (intAttribute(node, 'new_axis', 0) !== 1) {
        out.emit('Concat', sequence, output, [intAttributeProto('axis', axis)]);
        return;
      }
      // new_axis: each element gains the axis first (a negative axis counts in the output's rank).
      const pieces = sequence.map((name, index) => {
        const piece = `${output}::element_${index}`;
        unsqueeze(out, opset, name, piece, axis);
        return piece;
      });
      out.emit('Concat', pieces, output, [intAttributeProto('axis', axis)]);
      return;
    }
    case 'SplitToSequence':
      known.sequences.set(output, splitToSequence(node, opset, known, out));
      return;
    case 'Optional':
      known.optionals.set(output, node.input[0] || null);
      return;
    case 'OptionalHasElement':
    case 'OptionalGetElement': {
      const name = node.input[0];
      const element = name && known.optionals.has(name) ? known.optionals.get(name)! : elementOfTensor(node, opset, name);
      if (node.opType === 'OptionalHasElement') {
        out.emit('Identity', [out.constant('has_element', { datatype: 'BOOL', shape: [], data: Uint8Array.of(element ? 1 : 0) })], output);
        return;
      }
      if (element === null) throw invalidNode(node, `optional '${name}' is empty`);
      if (known.sequences.has(element)) known.sequences.set(output, known.sequences.get(element)!);
      else out.emit('Identity', [element], output);
      return;
    }
  }
}

/** OptionalHasElement / OptionalGetElement of something that is not an optional: from opset 18 a tensor or sequence counts as present. */
function elementOfTensor(node: NodeProto, opset: number, name: string | undefined): string | null {
  if (!name) return null;
  if (opset < 18) throw unsupported(node, `input '${name}' that is not an optional known at load (opset ${opset} takes optionals only)`);
  return name;
}

/** SplitToSequence as a Split into pieces whose count is known at load (split a constant, or the axis's length fixed). */
function splitToSequence(node: NodeProto, opset: number, known: Known, out: Emitter): string[] {
  const [input, splitName] = node.input;
  const axis = intAttribute(node, 'axis', 0);
  const keepdims = intAttribute(node, 'keepdims', 1);
  const dims = known.dims.get(input) ?? known.constants.get(input)?.shape;
  const split = splitName ? known.constants.get(splitName) : undefined;
  if (splitName && !split) throw unsupported(node, `split '${splitName}' computed at run time (it must be a constant)`);
  let sizes: number[];
  if (split && split.shape.length === 1) {
    sizes = toNumbers(split);
  } else {
    if (!dims) throw unsupported(node, `input '${input}' whose shape is not known at load (the number of pieces must be)`);
    const length = dims[axis < 0 ? axis + dims.length : axis];
    const chunk = split ? Number(toNumbers(split)[0]) : 1;
    if (!(chunk > 0)) throw invalidNode(node, `split ${chunk} must be positive`);
    sizes = Array.from({ length: Math.ceil(length / chunk) }, (_, index) => Math.min(chunk, length - index * chunk));
  }
  const [output] = node.output;
  const pieces = sizes.map((_, index) => `${output}::piece_${index}`);
  const squeezed = !split && keepdims === 0;
  const raw = squeezed ? pieces.map((name) => `${name}::kept`) : pieces;
  const splitAttribute = intsAttributeProto('split', sizes);
  if (opset < 13) out.emit('Split', [input], raw, [intAttributeProto('axis', axis), splitAttribute]);
  else out.emit('Split', [input, out.constant('split', { datatype: 'INT64', shape: [sizes.length], data: BigInt64Array.from(sizes, (size) => BigInt(size)) })], raw, [intAttributeProto('axis', axis)]);
  if (squeezed) raw.forEach((name, index) => squeeze(out, opset, name, pieces[index], axis));
  return pieces;
}

function unsqueeze(out: Emitter, opset: number, input: string, output: string, axis: number): void {
  if (opset < 13) out.emit('Unsqueeze', [input], output, [intsAttributeProto('axes', [axis])]);
  else out.emit('Unsqueeze', [input, out.constant(`${output}::axes`, { datatype: 'INT64', shape: [1], data: BigInt64Array.of(BigInt(axis)) })], output);
}

function squeeze(out: Emitter, opset: number, input: string, output: string, axis: number): void {
  if (opset < 13) out.emit('Squeeze', [input], output, [intsAttributeProto('axes', [axis])]);
  else out.emit('Squeeze', [input, out.constant(`${output}::axes`, { datatype: 'INT64', shape: [1], data: BigInt64Array.of(BigInt(axis)) })], output);
}

const scalarInt64 = (value: number): HostTensor => ({ datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(value)) });

function intAttributeProto(name: string, value: number): AttributeProto {
  return { name, type: 2, f: 0, i: value, s: new Uint8Array(), t: undefined, g: undefined, floats: [], ints: [], strings: [], tensors: [], graphs: [] };
}

function intsAttributeProto(name: string, values: number[]): AttributeProto {
  return { name, type: 7, f: 0, i: 0, s: new Uint8Array(), t: undefined, g: undefined, floats: [], ints: values, strings: [], tensors: [], graphs: [] };
}
