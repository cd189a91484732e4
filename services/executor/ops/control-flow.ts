/**
 * The If, Loop and Scan operator specs: attributes, input and output counts, parameters (the
 * leading inputs and the slots of controlFlowLayout, read on the host), output types and
 * validation. Running them needs the graph compiler, which imports this folder, so the compiler
 * provides their device operators when it loads (provideControlFlowDevices, from
 * compiler/control-flow.ts) instead of this folder importing it.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { NodeProto } from '../../onnx/model.ts';
import type { GraphProto } from '../../protocol/generated/onnx/onnx.ts';
import { intAttribute, intsAttribute, invalidNode, unsupported } from './attributes.ts';
import type { DeviceOperator, LoadContext, OperatorSpec } from './contract.ts';
import { controlFlowLayout, declaredDatatype, graphAttributeOf, inferredDatatype, outerIndices, parameterIndices } from './control-flow-layout.ts';

type ControlFlowOp = 'If' | 'Loop' | 'Scan';

/** The device operators of If, Loop and Scan, by op type. */
export type ControlFlowDevices = Readonly<Record<ControlFlowOp, (context: LoadContext) => DeviceOperator>>;

let devices: ControlFlowDevices | undefined;

export function provideControlFlowDevices(provided: ControlFlowDevices): void {
  devices = provided;
}

function deviceOf(op: ControlFlowOp) {
  return (context: LoadContext): DeviceOperator => {
    if (!devices) throw new Error('the graph compiler has not provided the control-flow operators');
    return devices[op](context);
  };
}

/** The outer values' types, by name, for inferring the types of untyped subgraph outputs. */
function outerTypes(node: NodeProto, inputTypes: ReadonlyArray<Datatype | undefined>): Map<string, Datatype> {
  const known = new Map<string, Datatype>();
  for (const index of outerIndices(node, controlFlowLayout(node))) if (inputTypes[index]) known.set(node.input[index], inputTypes[index]!);
  return known;
}

/** Declared output types of a subgraph from output `from` on, else `fallback`'s; FAILED_PRECONDITION for one that has neither. */
export function outputTypesOf(node: NodeProto, graph: GraphProto, from: number, fallback: ReadonlyArray<Datatype | undefined> = []): Datatype[] {
  return graph.output.slice(from).map((value, index) => {
    const datatype = declaredDatatype(value) ?? fallback[index];
    if (!datatype) throw unsupported(node, `an untyped subgraph output '${value.name}'`);
    return datatype;
  });
}

export const ifSpec: OperatorSpec = {
  attributes: ['then_branch', 'else_branch'],
  inputs: [1, 2 ** 31],
  outputs: [1, 2 ** 31],
  computesEveryOutput: true,
  parameters: parameterIndices(1),
  types({ node, inputTypes }) {
    const known = outerTypes(node, inputTypes);
    const [thenBranch, elseBranch] = [graphAttributeOf(node, 'then_branch'), graphAttributeOf(node, 'else_branch')];
    return outputTypesOf(node, thenBranch, 0, thenBranch.output.map((value, index) =>
      inferredDatatype(thenBranch, value.name, known) ?? (elseBranch.output[index] && inferredDatatype(elseBranch, elseBranch.output[index].name, known))));
  },
  device: deviceOf('If'),
};

export const loopSpec: OperatorSpec = {
  attributes: ['body'],
  inputs: [2, 2 ** 31],
  outputs: [1, 2 ** 31],
  computesEveryOutput: true,
  parameters: parameterIndices(2),
  types({ node, inputTypes }) {
    const body = graphAttributeOf(node, 'body');
    const carried = body.input.length - 2;
    const { tail } = controlFlowLayout(node);
    const carriedTypes = inputTypes.slice(tail, tail + carried).map((datatype, index) => datatype ?? declaredDatatype(body.output[1 + index]) ?? 'FP32');
    const known = outerTypes(node, inputTypes);
    known.set(body.input[0].name, 'INT64').set(body.input[1].name, 'BOOL');
    body.input.slice(2).forEach((value, index) => known.set(value.name, carriedTypes[index]));
    return [...carriedTypes, ...outputTypesOf(node, body, 1 + carried, body.output.slice(1 + carried).map((value) => inferredDatatype(body, value.name, known)))];
  },
  validate(node) {
    const body = graphAttributeOf(node, 'body');
    if (body.input.length < 2) throw invalidNode(node, `its body has ${body.input.length} inputs, at least 2 (iteration number, condition)`);
    if (body.output.length !== 1 + node.output.length) {
      throw invalidNode(node, `its body has ${body.output.length} outputs: the condition and one per node output (${node.output.length}) expected`);
    }
  },
  device: deviceOf('Loop'),
};

export const scanSpec: OperatorSpec = {
  attributes: ['body', 'num_scan_inputs', 'directions', 'scan_input_axes', 'scan_input_directions', 'scan_output_axes', 'scan_output_directions'],
  inputs: [1, 2 ** 31],
  outputs: [1, 2 ** 31],
  computesEveryOutput: true,
  parameters: parameterIndices(1),
  types({ node, inputTypes }) {
    const body = graphAttributeOf(node, 'body');
    const states = body.input.length - intAttribute(node, 'num_scan_inputs', 0);
    const { tail } = controlFlowLayout(node);
    return [...body.output.slice(0, states).map((value, index) => declaredDatatype(value) ?? inputTypes[tail + index] ?? 'FP32'),
      ...outputTypesOf(node, body, states)];
  },
  validate(node, opset) {
    const body = graphAttributeOf(node, 'body');
    const scanInputs = intAttribute(node, 'num_scan_inputs', 0);
    if (scanInputs < 1 || scanInputs > body.input.length) throw invalidNode(node, `num_scan_inputs ${scanInputs} for a body of ${body.input.length} inputs`);
    if (body.output.length !== node.output.length) throw invalidNode(node, `its body has ${body.output.length} outputs, the node ${node.output.length}`);
    if (opset < 9 && node.input[0]) throw unsupported(node, 'sequence_lens (every sequence in the batch must have the full length)');
    for (const name of ['directions', 'scan_input_directions', 'scan_output_directions']) {
      if ((intsAttribute(node, name) ?? []).some((direction) => direction !== 0 && direction !== 1)) throw invalidNode(node, `${name} must be 0 or 1`);
    }
  },
  device: deviceOf('Scan'),
};
