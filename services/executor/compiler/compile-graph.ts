/**
 * Turns a decoded ONNX model into the runtime's steps, with no GPU involved: placement
 * (placement.ts: operators checked, nodes ordered, constants folded, values placed on the CPU
 * or the GPU), fusion (fusion.ts), then the steps with their device operators (steps.ts).
 * walkShapes() (shape-walk.ts) then gives every value's shape for concrete input shapes.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, ModelProto, ModelSignature } from '../../onnx/model.ts';
import { operatorSpec, provideControlFlowDevices, type GpuTraits, type Location } from '../ops/index.ts';
import type { NodeProto } from '../../onnx/model.ts';
import type { Precision } from '../tensor/index.ts';
import { DEFAULT_COMPILE_BUDGETS, type CompileBudgets } from './compile-budgets.ts';
import { CONTROL_FLOW_DEVICES } from './control-flow.ts';
import { provideSubgraphCompiler } from './subgraph.ts';
import { withSubgraphReferences } from './subgraph-references.ts';
import { checkTensorSignature, withoutSequences } from './sequences.ts';
import { withConstantIfsInlined } from './inline-if.ts';
import { withMaskedLoopConditions } from './loop-condition.ts';
import { fuseGraph } from './fusion.ts';
import type { Graph } from './graph.ts';
import { placeModel } from './placement.ts';
import { segmentationOf } from './segments.ts';
import { probeShapes, walkShapes } from './shape-walk.ts';
import { buildSteps, type Step, type StepContext } from './steps.ts';

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

export interface GraphCompileOptions {
  readonly precision: Precision;
  readonly traits: GpuTraits;
  /** What the compile may cost (compile-budgets.ts). Default: DEFAULT_COMPILE_BUDGETS. */
  readonly budgets?: CompileBudgets;
}

/**
 * Compiles the model's graph; throws FAILED_PRECONDITION for anything the executor cannot run
 * and RESOURCE_EXHAUSTED for a model over its budgets.
 */
export function compileGraph(model: ModelProto, options: GraphCompileOptions): CompiledGraph {
  const budgets = options.budgets ?? DEFAULT_COMPILE_BUDGETS;
  checkTensorSignature(model);
  const { name, signature, opset, graph } = placeModel(withSubgraphReferences(withMaskedLoopConditions(withoutSequences(withConstantIfsInlined(model))), hostReads), budgets);
  const stepContext = (values: Graph): StepContext => ({
    opset, precision: options.precision, traits: options.traits,
    constants: new Map(values.constants), datatypes: new Map(values.datatypes), locations: new Map(values.locations),
  });
  const fused = fuseGraph(graph, {
    // The probe builds throw-away unfused operators over copies of the value maps, so the weights
    // they re-lay out never reach the model.
    probeShapes: (unfused) => {
      const scratch = stepContext(unfused);
      return probeShapes(buildSteps(unfused, scratch), signature, scratch.constants, budgets);
    },
  });
  const context = stepContext(fused);
  const steps = buildSteps(fused, context);
  return {
    name, signature, opset, precision: options.precision, constants: context.constants, datatypes: context.datatypes, locations: context.locations,
    steps, outputs: fused.outputs, fused: fused.fused,
  };
}

// If, Loop and Scan compile their subgraphs with this compiler, and the registry gets their
// device operators from it: the operators cannot import the compiler, which imports them.
provideSubgraphCompiler({ compile: compileGraph, segmentation: segmentationOf, walk: walkShapes });
provideControlFlowDevices(CONTROL_FLOW_DEVICES);

/** The inputs of `node` its operator reads on the host (none for an operator the executor lacks: its load fails anyway). */
function hostReads(node: NodeProto): readonly number[] {
  let spec;
  try {
    spec = operatorSpec(node);
  } catch {
    return [];
  }
  if (!spec || spec.shapeOnly) return [];
  if (spec.cpu && !spec.device) return node.input.map((_, index) => index);
  return spec.parameters ?? [];
}
