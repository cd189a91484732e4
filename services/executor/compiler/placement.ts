/**
 * From a decoded ONNX model to the compiler's graph, with no GPU involved: every operator and
 * attribute checked (unsupported ones fail the load, naming the node), nodes put in topological
 * order, and each value placed: constants (initializers, Constant nodes and everything computed
 * from them alone, folded now on the CPU), host values (shape computations such as
 * Shape -> Gather -> Concat, evaluated on the CPU once per input shape) and device values.
 * Nodes no output depends on are dropped.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, ModelProto, ModelSignature, NodeProto } from '../../onnx/model.ts';
import { defaultOpsetVersion, signatureOf, tensorFromProto } from '../../onnx/model.ts';
import { failedPrecondition } from '../../domain/errors.ts';
import { checkSupported, invalidNode, operatorSpec, unsupported, type Location } from '../ops/index.ts';
import { MAX_OPSET, resolveOperatorVersion } from '../ops/opset-versions.ts';
import { isComputable } from '../tensor/index.ts';
import { checkDeclaredSizes, checkedElementCount, createFoldAllocator, DEFAULT_COMPILE_BUDGETS, type CompileBudgets } from './compile-budgets.ts';
import { evaluateOnCpu, knownInput } from './cpu-evaluation.ts';
import { checkExtraOutputs, topologicalOrder, withoutDeadNodes, type Graph, type GraphNode } from './graph.ts';

/** A model's graph as placed, before fusion. */
export interface PlacedModel {
  /** The ONNX graph's name (labels GPU objects). */
  readonly name: string;
  readonly signature: ModelSignature;
  readonly opset: number;
  readonly graph: Graph;
}

/**
 * Checks, orders and places the model's nodes; throws FAILED_PRECONDITION for anything the
 * executor cannot run, RESOURCE_EXHAUSTED for a model over one of `budgets`.
 */
export function placeModel(model: ModelProto, budgets: CompileBudgets = DEFAULT_COMPILE_BUDGETS): PlacedModel {
  const graph = model.graph!;
  // Sizes the file declares are checked before any tensor is decoded or folded.
  checkDeclaredSizes(model, budgets);
  const allocator = createFoldAllocator(budgets);
  const opset = defaultOpsetVersion(model);
  // A later opset may change an operator's meaning; running it under the old rules could give
  // wrong answers instead of an error.
  if (opset > MAX_OPSET) {
    throw failedPrecondition(`the model imports ONNX opset ${opset}; this executor knows the operators up to opset ${MAX_OPSET}`);
  }
  const signature = signatureOf(model);
  // Every numeric and boolean type is converted to its GPU storage type at upload (see
  // tensor/values.ts); strings have none.
  for (const input of signature.inputs) {
    if (!isComputable(input.datatype)) {
      throw failedPrecondition(`input '${input.name}' is ${input.datatype}; the GPU executor computes numbers and booleans, not strings`);
    }
  }
  // Each node as the version in effect at the model's opset defines it (old spellings in their
  // modern form); unsupported operators and versions are reported before anything else,
  // whatever their position.
  const nodes = graph.node.map((node) => resolveOperatorVersion(node, opset));
  for (const node of nodes) checkSupported(node, opset);

  const constants = new Map<string, HostTensor>();
  const datatypes = new Map<string, Datatype>();
  const locations = new Map<string, Location>();
  const place = (name: string, datatype: Datatype, location: Location) => {
    datatypes.set(name, datatype);
    locations.set(name, location);
  };
  const setConstant = (name: string, tensor: HostTensor) => {
    constants.set(name, tensor);
    place(name, tensor.datatype, 'constant');
  };
  for (const initializer of graph.initializer) setConstant(initializer.name, tensorFromProto(initializer));
  for (const input of signature.inputs) {
    place(input.name, input.datatype, 'device');
    constants.delete(input.name);
  }

  // Place every node: fold it now, evaluate it per plan on the CPU, or run it on the GPU.
  const placed: GraphNode[] = [];
  for (const node of topologicalOrder(nodes, locations.keys())) {
    const spec = operatorSpec(node);
    if (!spec) {
      setConstant(node.output[0], constantValue(node));
      continue;
    }
    const inputTypes = node.input.map((name) => (name ? datatypes.get(name) : undefined));
    const outputTypes = spec.types({ node, inputTypes });
    for (const datatype of outputTypes) if (!isComputable(datatype)) throw unsupported(node, `${datatype} outputs`);
    const inputLocations = node.input.map((name) => (name ? locations.get(name) : undefined));
    const known = inputLocations.every((location) => location !== 'device');
    // A CPU-only operator with inputs computed on the GPU (ConstantOfShape of a computed shape)
    // still runs on the host: the run reads those inputs back first (segments.ts), as it does for
    // a device operator's parameters (Tile's repeats, Slice's starts, ...).
    if (spec.cpu && (known || spec.shapeOnly || !spec.device)) {
      if (inputLocations.every((location) => location !== 'device' && location !== 'host')) {
        const inputs = node.input.map((name) => (name ? knownInput(constants.get(name)) : undefined));
        const outputs = evaluateOnCpu(node, spec, opset, outputTypes, inputs, allocator);
        outputs.forEach((tensor, index) => {
          // Outputs that alias their input (Reshape, Squeeze, ...) allocate nothing, but their shapes must still be shapes.
          checkedElementCount(tensor.shape, `the output of ${node.opType} '${node.name}'`, budgets);
          if (node.output[index]) setConstant(node.output[index], tensor);
        });
        continue;
      }
      placed.push({ node, spec, outputTypes, host: true, position: placed.length });
      node.output.forEach((name, index) => {
        if (name) place(name, outputTypes[index], 'host');
      });
      continue;
    }
    placed.push({ node, spec, outputTypes, host: false, position: placed.length });
    node.output.forEach((name, index) => {
      if (name) place(name, outputTypes[index], 'device');
    });
  }

  const outputs = signature.outputs.map((output) => output.name);
  for (const name of outputs) {
    if (!locations.has(name)) throw failedPrecondition(`graph output '${name}' is not computed by any node`);
  }
  checkExtraOutputs(placed.map((entry) => entry.node), outputs);
  return {
    name: graph.name, signature, opset,
    graph: { nodes: withoutDeadNodes(placed, outputs), outputs, constants, datatypes, locations, fused: [] },
  };
}

/** The tensor a Constant node holds. */
function constantValue(node: NodeProto): HostTensor {
  const [attribute] = node.attribute;
  if (!attribute || node.attribute.length !== 1) throw invalidNode(node, 'a Constant needs exactly one value attribute');
  switch (attribute.name) {
    case 'value':
      if (!attribute.t) throw invalidNode(node, 'value has no tensor');
      return tensorFromProto(attribute.t);
    case 'value_float': return { datatype: 'FP32', shape: [], data: Float32Array.of(attribute.f) };
    case 'value_floats': return { datatype: 'FP32', shape: [attribute.floats.length], data: Float32Array.from(attribute.floats) };
    case 'value_int': return { datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(attribute.i)) };
    case 'value_ints': return { datatype: 'INT64', shape: [attribute.ints.length], data: BigInt64Array.from(attribute.ints, (value) => BigInt(value)) };
    default: throw unsupported(node, `attribute '${attribute.name}'`);
  }
}
