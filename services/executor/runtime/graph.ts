/**
 * Turns a decoded ONNX model into the runtime's steps, with no GPU involved:
 *
 * 1. every operator and attribute checked (unsupported ones fail the load, naming the node);
 * 2. nodes put in topological order;
 * 3. each value placed: constants (initializers, Constant nodes and everything computed from
 *    them alone, folded now on the CPU), host values (shape computations such as
 *    Shape -> Gather -> Concat, evaluated on the CPU once per input shape) and device values;
 * 4. fusion (fusion.ts): BatchNormalization folded into the Conv before it, biases, residual
 *    additions and activations folded into the GEMM / convolution / binary op before them, a
 *    constant Mul / Div into the Softmax after it;
 * 5. nodes no output depends on dropped.
 *
 * walkShapes() then gives every value's shape (and every host value) for concrete input shapes;
 * the plan (plan.ts) and the load-time probe that proves fused residuals' shapes both use it.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, ModelProto, ModelSignature, NodeProto } from '../../onnx/model.ts';
import { defaultOpsetVersion, signatureOf, tensorFromProto } from '../../onnx/model.ts';
import { ErrorCode, failedPrecondition, invalidArgument, NexusError } from '../../domain/errors.ts';
import { invalidNode, unsupported } from './attributes.ts';
import { SHAPE_OPS, type CpuInput } from './cpu-ops.ts';
import { foldBatchNorms, planFusion, type FusionContext, type FusionPlan, type PlacedNode } from './fusion.ts';
import {
  checkSupported, operatorSpec, type DeviceOperator, type Epilogue, type GpuTraits, type LoadInput, type Location, type OperatorPlan,
  type OperatorSpec, type PlanInput,
} from './operators.ts';
import { INPUT_DATATYPES, isComputable, type Precision } from './values.ts';

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

/** A node (possibly with fused successors) that runs on the GPU. */
export interface DeviceStep {
  readonly kind: 'device';
  readonly node: NodeProto;
  /** "Conv 'conv_1' + Add 'add_3' + Relu 'relu_4'", for labels and errors. */
  readonly label: string;
  readonly operator: DeviceOperator;
  /** The node's inputs, then the fused bias and residual values; undefined where omitted. */
  readonly inputs: ReadonlyArray<string | undefined>;
  readonly outputs: readonly string[];
}

export type Step = HostStep | DeviceStep;

export interface CompiledGraph {
  /** The ONNX graph's name (labels GPU objects). */
  readonly name: string;
  readonly signature: ModelSignature;
  readonly opset: number;
  readonly precision: Precision;
  /** Values known at load time, by name (initializers, Constant nodes, folded, derived). */
  readonly constants: ReadonlyMap<string, HostTensor>;
  /** Every value's datatype. */
  readonly datatypes: ReadonlyMap<string, Datatype>;
  readonly locations: ReadonlyMap<string, Location>;
  /** Steps in an order where every input is computed before it is read. */
  readonly steps: readonly Step[];
  /** Graph output names, in signature order. */
  readonly outputs: readonly string[];
  /**
   * Nodes merged away by fusion, for reports: BatchNormalizations folded into convolutions first
   * ("BatchNormalization 'bn_1' into Conv 'conv_1'"), then epilogues ("Relu 'relu_3' into Conv 'conv_2'").
   */
  readonly fused: readonly string[];
}

export interface CompileOptions {
  readonly precision: Precision;
  readonly traits: GpuTraits;
}

/** The newest default-domain opset whose operator semantics the runtime implements. */
export const MAX_OPSET = 21;

/** Compiles the model's graph; throws FAILED_PRECONDITION for anything the executor cannot run. */
export function compileGraph(model: ModelProto, options: CompileOptions): CompiledGraph {
  const graph = model.graph!;
  const opset = defaultOpsetVersion(model);
  // A later opset may change an operator's meaning; running it under the old rules could give
  // wrong answers instead of an error.
  if (opset > MAX_OPSET) {
    throw failedPrecondition(`the model imports ONNX opset ${opset}; this executor knows the operators up to opset ${MAX_OPSET}`);
  }
  const signature = signatureOf(model);
  for (const input of signature.inputs) {
    if (!INPUT_DATATYPES.includes(input.datatype)) {
      throw failedPrecondition(`input '${input.name}' is ${input.datatype}; the GPU executor takes ${INPUT_DATATYPES.join(', ')} inputs`);
    }
  }
  // Unsupported operators are reported before anything else, whatever their position.
  for (const node of graph.node) checkSupported(node, opset);

  const constants = new Map<string, HostTensor>();
  const datatypes = new Map<string, Datatype>();
  const locations = new Map<string, Location>();
  for (const initializer of graph.initializer) {
    const tensor = tensorFromProto(initializer);
    constants.set(initializer.name, tensor);
    datatypes.set(initializer.name, tensor.datatype);
    locations.set(initializer.name, 'constant');
  }
  for (const input of signature.inputs) {
    datatypes.set(input.name, input.datatype);
    locations.set(input.name, 'device');
    constants.delete(input.name);
  }

  // Place every node: fold it now, evaluate it per plan on the CPU, or run it on the GPU.
  const placed: Array<{ node: NodeProto; spec: OperatorSpec; outputTypes: Datatype[]; host: boolean }> = [];
  for (const node of topologicalOrder(graph.node, locations.keys())) {
    const spec = operatorSpec(node);
    if (!spec) {
      const tensor = constantValue(node);
      constants.set(node.output[0], tensor);
      datatypes.set(node.output[0], tensor.datatype);
      locations.set(node.output[0], 'constant');
      continue;
    }
    const inputTypes = node.input.map((name) => (name ? datatypes.get(name) : undefined));
    const outputTypes = spec.types({ node, inputTypes });
    for (const datatype of outputTypes) if (!isComputable(datatype)) throw unsupported(node, `${datatype} outputs`);
    const inputLocations = node.input.map((name) => (name ? locations.get(name) : undefined));
    const shapeOnly = SHAPE_OPS.has(node.opType);
    const known = inputLocations.every((location) => location !== 'device');
    if (spec.cpu && (known || shapeOnly)) {
      if (inputLocations.every((location) => location !== 'device' && location !== 'host')) {
        const outputs = evaluateOnCpu(node, spec, opset, outputTypes, node.input.map((name) => (name ? constants.get(name) : undefined)));
        outputs.forEach((tensor, index) => {
          const name = node.output[index];
          if (!name) return;
          constants.set(name, tensor);
          datatypes.set(name, tensor.datatype);
          locations.set(name, 'constant');
        });
        continue;
      }
      placed.push({ node, spec, outputTypes, host: true });
      node.output.forEach((name, index) => {
        if (!name) return;
        datatypes.set(name, outputTypes[index]);
        locations.set(name, 'host');
      });
      continue;
    }
    if (!spec.device) {
      const late = node.input.find((name, index) => name && inputLocations[index] === 'device');
      throw unsupported(node, `input '${late}' computed on the GPU (it must be known before the GPU runs)`);
    }
    for (const index of spec.parameters ?? []) {
      const name = node.input[index];
      if (name && locations.get(name) === 'device') {
        throw unsupported(node, `input '${name}' computed on the GPU (it must be a constant or computed from shapes)`);
      }
    }
    placed.push({ node, spec, outputTypes, host: false });
    node.output.forEach((name, index) => {
      if (!name) return;
      datatypes.set(name, outputTypes[index]);
      locations.set(name, 'device');
    });
  }

  const outputs = signature.outputs.map((output) => output.name);
  for (const name of outputs) {
    if (!locations.has(name)) throw failedPrecondition(`graph output '${name}' is not computed by any node`);
  }
  checkExtraOutputs(placed.map((entry) => entry.node), outputs);

  const live = withoutDeadNodes(placed, outputs);
  const { placed: folded, foldedDescriptions } = foldBatchNorms(live, { constants, datatypes, locations }, outputs);
  const context = { opset, precision: options.precision, traits: options.traits, constants, datatypes, locations };
  // The probe builds throw-away unfused operators over copies of the value maps, so the weights
  // they re-lay out never reach the model.
  const probe = () => {
    const scratch = { ...context, constants: new Map(constants), datatypes: new Map(datatypes), locations: new Map(locations) };
    return probeShapes(buildSteps(folded, NO_FUSION, scratch), signature, scratch.constants);
  };
  const fusion = planFusion(folded, context, outputs, probe);
  const steps = buildSteps(folded, fusion, context);
  return {
    name: graph.name, signature, opset, precision: options.precision, constants, datatypes, locations, steps, outputs,
    fused: [...foldedDescriptions, ...fusion.fusedDescriptions],
  };
}

const NO_FUSION: FusionPlan = { heads: new Map(), absorbed: new Set(), fusedDescriptions: [] };

/** Creates the device operator of a node (with an epilogue, appended inputs after the node's own). */
export function createOperator(
  entry: PlacedNode, context: FusionContext, extraInputs: readonly string[] = [], epilogue?: Epilogue,
): { operator: DeviceOperator; inputs: Array<string | undefined> } {
  const { node, spec } = entry;
  const inputs = [...node.input.map((name) => name || undefined), ...extraInputs];
  const loadInputs: LoadInput[] = inputs.map((name) => ({
    name,
    datatype: name ? context.datatypes.get(name) : undefined,
    location: name ? context.locations.get(name) : undefined,
    constant: name ? context.constants.get(name) : undefined,
  }));
  let derived = 0;
  const operator = spec.device!({
    node, opset: context.opset, precision: context.precision, inputs: loadInputs, outputTypes: entry.outputTypes, traits: context.traits, epilogue,
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

function buildSteps(placed: readonly PlacedNode[], fusion: FusionPlan, context: FusionContext): Step[] {
  const order = new Map<NodeProto, number>(placed.map((entry, index) => [entry.node, index]));
  const positioned: Array<{ step: Step; position: number }> = [];
  for (const entry of placed) {
    if (fusion.absorbed.has(entry.node)) continue;
    const position = order.get(entry.node)!;
    if (entry.host) {
      positioned.push({
        position,
        step: {
          kind: 'host', node: entry.node, opset: context.opset, spec: entry.spec, inputs: entry.node.input.map((name) => name || undefined),
          outputs: entry.node.output, outputTypes: entry.outputTypes,
        },
      });
      continue;
    }
    const fused = fusion.heads.get(entry.node);
    // A head that took over the node before it reads that node's input instead.
    const input = [...entry.node.input];
    if (fused?.input0 !== undefined) input[0] = fused.input0;
    if (fused?.input1 !== undefined) input[1] = fused.input1;
    const head = fused?.input0 === undefined && fused?.input1 === undefined ? entry : { ...entry, node: { ...entry.node, input } };
    const { operator, inputs } = createOperator(head, context, fused?.extraInputs ?? [], fused?.epilogue);
    positioned.push({
      // A fused step runs where its last absorbed node ran: after every value it reads.
      position: fused ? order.get(fused.runsAt)! : position,
      step: {
        kind: 'device', node: entry.node, label: fused?.label ?? `${entry.node.opType} '${entry.node.name}'`, operator, inputs,
        outputs: fused ? [fused.output] : entry.node.output,
      },
    });
  }
  return positioned.sort((left, right) => left.position - right.position).map(({ step }) => step);
}

/** Outputs past the first are only produced by Split; anywhere else they must be unused. */
function checkExtraOutputs(nodes: readonly NodeProto[], graphOutputs: readonly string[]): void {
  const read = new Set(graphOutputs);
  for (const node of nodes) for (const name of node.input) if (name) read.add(name);
  for (const node of nodes) {
    if (node.opType === 'Split') continue;
    const extra = node.output.slice(1).find((name) => name && read.has(name));
    if (extra) throw unsupported(node, `output '${extra}' (only the first output is computed in inference)`);
  }
}

function evaluateOnCpu(
  node: NodeProto, spec: OperatorSpec, opset: number, outputTypes: readonly Datatype[], inputs: ReadonlyArray<HostTensor | undefined>,
  shapes?: ReadonlyArray<readonly number[] | undefined>,
): HostTensor[] {
  const cpuInputs: Array<CpuInput | undefined> = inputs.map((tensor, index) => {
    const shape = shapes?.[index] ?? tensor?.shape;
    return shape ? { shape, tensor } : undefined;
  });
  try {
    return spec.cpu!({ node, opset, inputs: cpuInputs, outputTypes });
  } catch (error) {
    if (error instanceof NexusError && error.code === ErrorCode.FAILED_PRECONDITION) throw error;
    throw invalidArgument(`node '${node.name}' (${node.opType}): ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Every value's shape and every host value for concrete input shapes, and each device step's plan. */
export interface ShapeWalk {
  readonly shapes: Map<string, readonly number[]>;
  readonly values: Map<string, HostTensor>;
  readonly plans: Map<DeviceStep, OperatorPlan>;
}

/**
 * Walks the steps in order for concrete input shapes: host steps are evaluated on the CPU,
 * device steps planned (shapes and dispatches). Shape errors are INVALID_ARGUMENT naming the
 * node; a kernel's own limit (RangeError) is FAILED_PRECONDITION.
 */
export function walkShapes(
  steps: readonly Step[], constants: ReadonlyMap<string, HostTensor>, inputShapes: ReadonlyMap<string, readonly number[]>, maxPerDimension: number,
): ShapeWalk {
  const shapes = new Map<string, readonly number[]>(inputShapes);
  const values = new Map<string, HostTensor>(constants);
  for (const [name, tensor] of constants) shapes.set(name, tensor.shape);
  const plans = new Map<DeviceStep, OperatorPlan>();
  for (const step of steps) {
    if (step.kind === 'host') {
      const outputs = evaluateOnCpu(step.node, step.spec, step.opset, step.outputTypes,
        step.inputs.map((name) => (name ? values.get(name) : undefined)), step.inputs.map((name) => (name ? shapes.get(name) : undefined)));
      outputs.forEach((tensor, index) => {
        const name = step.outputs[index];
        if (!name) return;
        values.set(name, tensor);
        shapes.set(name, tensor.shape);
      });
      continue;
    }
    const inputs: Array<PlanInput | undefined> = step.inputs.map((name) => {
      if (!name) return undefined;
      const shape = shapes.get(name);
      if (!shape) throw new Error(`${step.label}: input '${name}' has no shape yet`);
      return { shape, value: values.get(name) };
    });
    let plan: OperatorPlan;
    try {
      plan = step.operator.plan(inputs, maxPerDimension);
    } catch (error) {
      if (error instanceof RangeError) throw failedPrecondition(`${step.label}: ${error.message}`);
      if (error instanceof NexusError) throw new NexusError(error.code, `${step.label}: ${error.message}`, { cause: error });
      throw error;
    }
    plans.set(step, plan);
    step.outputs.forEach((name, index) => {
      if (name && plan.outputShapes[index]) shapes.set(name, plan.outputShapes[index]);
    });
  }
  return { shapes, values, plans };
}

/**
 * Shapes of every value for two sets of probe input shapes (variable dims set to 2, then 3), or
 * undefined when the model does not accept them. Used at load to prove a residual addition
 * has the GEMM output's shape before fusing it.
 */
function probeShapes(steps: readonly Step[], signature: ModelSignature, constants: ReadonlyMap<string, HostTensor>): Array<ReadonlyMap<string, readonly number[]>> | undefined {
  const walks: Array<ReadonlyMap<string, readonly number[]>> = [];
  for (const probe of [2, 3]) {
    const inputShapes = new Map(signature.inputs.map((input) => [input.name, input.shape.map((dim) => (dim < 0 ? probe : dim))]));
    try {
      walks.push(walkShapes(steps, constants, inputShapes, 65535).shapes);
    } catch (error) {
      if (error instanceof NexusError && error.code === ErrorCode.FAILED_PRECONDITION) throw error;
      return undefined;
    }
  }
  return walks;
}

/**
 * Nodes ordered so that each comes after the producers of its inputs (Kahn's algorithm, keeping
 * the file's order among ready nodes). Throws when an input has no producer or nodes form a cycle.
 */
export function topologicalOrder(nodes: readonly NodeProto[], available: Iterable<string>): NodeProto[] {
  const producerOf = new Map<string, NodeProto>();
  for (const node of nodes) for (const output of node.output) if (output) producerOf.set(output, node);
  const known = new Set(available);
  const waitingOn = new Map<NodeProto, number>();
  const consumersOf = new Map<string, NodeProto[]>();
  for (const node of nodes) {
    const pending = new Set(node.input.filter((name) => name && !known.has(name)));
    for (const name of pending) {
      if (!producerOf.has(name)) {
        throw invalidNode(node, `input '${name}' is neither a graph input, an initializer nor any node's output`);
      }
      consumersOf.set(name, [...(consumersOf.get(name) ?? []), node]);
    }
    waitingOn.set(node, pending.size);
  }
  const order: NodeProto[] = [];
  const ready = nodes.filter((node) => waitingOn.get(node) === 0);
  while (ready.length > 0) {
    const node = ready.shift()!;
    order.push(node);
    for (const output of node.output) {
      for (const consumer of consumersOf.get(output) ?? []) {
        const remaining = waitingOn.get(consumer)! - 1;
        waitingOn.set(consumer, remaining);
        if (remaining === 0) ready.push(consumer);
      }
    }
  }
  if (order.length !== nodes.length) {
    const stuck = nodes.filter((node) => !order.includes(node)).map((node) => `'${node.name}'`);
    throw failedPrecondition(`the graph has a cycle through node(s) ${stuck.join(', ')}`);
  }
  return order;
}

/** Placed nodes that some graph output depends on, in their original order. */
function withoutDeadNodes(placed: readonly PlacedNode[], outputs: readonly string[]): PlacedNode[] {
  const needed = new Set(outputs);
  const kept: PlacedNode[] = [];
  for (let index = placed.length - 1; index >= 0; index--) {
    const entry = placed[index];
    if (!entry.node.output.some((name) => name && needed.has(name))) continue;
    kept.push(entry);
    for (const input of entry.node.input) if (input) needed.add(input);
  }
  return kept.reverse();
}

/** The tensor a Constant node holds. */
export function constantValue(node: NodeProto): HostTensor {
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
