/**
 * What the runtime runs: the graph's nodes as steps in run order, host steps evaluated on the
 * CPU per input shape and device steps with their GPU operator built (fused work included).
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import type { DeviceOperator, GpuTraits, LoadInput, Location, OperatorSpec } from '../ops/index.ts';
import type { Precision } from '../tensor/index.ts';
import { describeNode, type Graph, type GraphNode } from './graph.ts';

/** A node evaluated on the CPU once per input shape (shape computations). */
export interface HostStep {
  readonly kind: 'host';
  readonly node: NodeProto;
  readonly opset: number;
  readonly spec: OperatorSpec;
  readonly inputs: ReadonlyArray<string | undefined>;
  readonly outputs: readonly string[];
  readonly outputTypes: readonly Datatype[];
}

/** A node (possibly with fused neighbours) that runs on the GPU. */
export interface DeviceStep {
  readonly kind: 'device';
  readonly node: NodeProto;
  /** "Conv 'conv_1' + Add 'add_3' + Relu 'relu_4'", for labels and errors. */
  readonly label: string;
  readonly operator: DeviceOperator;
  /** The node's inputs, then the fused bias and residual values; undefined where omitted. */
  readonly inputs: ReadonlyArray<string | undefined>;
  readonly outputs: readonly string[];
  /** Indices of the inputs whose values the operator's plan reads on the host (the spec's parameters). */
  readonly hostInputs: readonly number[];
}

export type Step = HostStep | DeviceStep;

/** What building device operators needs; the value maps collect the constants operators derive. */
export interface StepContext {
  readonly opset: number;
  readonly precision: Precision;
  readonly traits: GpuTraits;
  readonly constants: Map<string, HostTensor>;
  readonly datatypes: Map<string, Datatype>;
  readonly locations: Map<string, Location>;
}

/**
 * The graph's nodes as steps, ordered by position. Device operators are built here, and the
 * constants they derive (re-laid-out weights) land in `context`'s value maps.
 */
export function buildSteps(graph: Graph, context: StepContext): Step[] {
  return [...graph.nodes].sort((left, right) => left.position - right.position).map((entry): Step => {
    const { node } = entry;
    if (entry.host) {
      return {
        kind: 'host', node, opset: context.opset, spec: entry.spec, inputs: node.input.map((name) => name || undefined),
        outputs: node.output, outputTypes: entry.outputTypes,
      };
    }
    const { operator, inputs } = createOperator(entry, context);
    return {
      kind: 'device', node, label: entry.fusion?.label ?? describeNode(node), operator, inputs, outputs: node.output,
      hostInputs: (entry.spec.parameters ?? []).filter((index) => index < node.input.length && node.input[index]),
    };
  });
}

/**
 * The values a step reads on the host: every input of a host step (only shapes for Shape and
 * Size), a device step's parameters. One computed on the GPU is read back before the step
 * (segments.ts); one that is a graph input comes from the request.
 */
export function hostReads(step: Step): string[] {
  if (step.kind === 'host') return step.spec.shapeOnly ? [] : step.inputs.filter((name): name is string => Boolean(name));
  return step.hostInputs.map((index) => step.inputs[index]).filter((name): name is string => Boolean(name));
}

/** Creates the device operator of a node (with its epilogue, and the fused inputs after the node's own). */
function createOperator(entry: GraphNode, context: StepContext): { operator: DeviceOperator; inputs: Array<string | undefined> } {
  const { node, spec } = entry;
  const inputs = [...node.input.map((name) => name || undefined), ...(entry.fusion?.extraInputs ?? [])];
  const loadInputs: LoadInput[] = inputs.map((name) => ({
    name,
    datatype: name ? context.datatypes.get(name) : undefined,
    location: name ? context.locations.get(name) : undefined,
    constant: name ? context.constants.get(name) : undefined,
  }));
  let derived = 0;
  const operator = spec.device!({
    node, opset: context.opset, precision: context.precision, inputs: loadInputs, outputTypes: entry.outputTypes, traits: context.traits,
    epilogue: entry.fusion?.epilogue,
    addConstant(suffix, tensor) {
      const name = `${node.name || node.output[0]}::${suffix}${derived++ ? `_${derived}` : ''}`;
      context.constants.set(name, tensor);
      context.datatypes.set(name, tensor.datatype);
      context.locations.set(name, 'constant');
      return name;
    },
  });
  return { operator, inputs };
}
