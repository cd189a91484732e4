/**
 * If, Loop and Scan on the GPU. Each runs as one step whose plan holds its subgraphs' dispatches
 * (subgraph.ts): If's condition and Loop's trip count and condition are parameters, read on the
 * host before the step is planned (from the request, or read back from the GPU at a segment
 * boundary, segments.ts), so a plan holds exactly the branch taken or the iterations run, and the
 * plan cache keeps one plan per condition. A loop is unrolled up to MAX_LOOP_ITERATIONS; its
 * body computes its condition here only from what the host knows (the iteration number,
 * constants, shapes), since a body cannot read back from the GPU in the middle of a step: one
 * computed from data was rewritten before placement into a masked loop (loop-condition.ts), or,
 * without a trip count, is refused.
 *
 * Outer-scope values a subgraph reads are inputs of its parent node (subgraph-references.ts);
 * ops/control-flow.ts holds the rest of the specs, and the compiler provides these device
 * operators to it when it loads.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import type { GraphProto } from '../../protocol/generated/onnx/onnx.ts';
import { failedPrecondition } from '../../domain/errors.ts';
import {
  controlFlowLayout, declaredDatatype, declaredShape, graphAttributeOf, invalidNode, outerIndices, outputTypesOf, unsupported,
  type ControlFlowDevices, type DeviceOperator, type LoadContext, type OperatorPlan,
} from '../ops/index.ts';
import { STORAGE_BYTES, storageOf, toNumbers } from '../tensor/index.ts';
import { compileBody, SubgraphProgram, VariantTable, type BodyInput, type BoundValue, type CompiledBody } from './subgraph.ts';
import { scanPlan } from './scan.ts';

/** Iterations one Loop may unroll to in one plan. */
export const MAX_LOOP_ITERATIONS = 4096;

/** The outer values a control-flow node binds (controlFlowLayout), as body inputs. */
function outerInputs(context: LoadContext): BodyInput[] {
  return outerIndices(context.node, controlFlowLayout(context.node)).map((index) => {
    const input = context.inputs[index];
    if (!input.datatype) throw invalidNode(context.node, `outer value '${input.name}' has no type`);
    return { name: input.name!, datatype: input.datatype, constant: input.constant };
  });
}

/** The bound outer values of a plan, in `outerInputs` order. */
function boundOuter(node: NodeProto, inputs: ReadonlyArray<{ shape: readonly number[]; value: HostTensor | undefined } | undefined>): BoundValue[] {
  return outerIndices(node, controlFlowLayout(node)).map((index) => ({ shape: inputs[index]!.shape, value: inputs[index]!.value, ref: { input: index } }));
}

/** A parent's plan from its program, with every result copied into the parent's outputs. */
function finish(program: SubgraphProgram, results: ReadonlyArray<BoundValue & { datatype: Datatype }>): OperatorPlan {
  results.forEach((result, index) => program.copy(result.datatype, result.ref, { output: index }, result.shape));
  return { outputShapes: results.map((result) => [...result.shape]), dispatches: program.dispatches, scratch: program.scratch, tables: program.tables };
}

/** The copy kernels a plan may use: results into outputs, slices into the body's inputs. */
const addCopies = (table: VariantTable, context: LoadContext, datatypes: readonly Datatype[]): void =>
  table.addCopies(new Set(datatypes.map((datatype) => storageOf(datatype, context.precision))));

const scratchUnit = (context: LoadContext): number => STORAGE_BYTES[storageOf(context.outputTypes[0], context.precision)];

const truthy = (tensor: HostTensor): boolean => {
  const [value] = toNumbers(tensor);
  return value !== undefined && value !== 0;
};

function ifDevice(context: LoadContext): DeviceOperator {
  const { node } = context;
  const table = new VariantTable();
  const outer = outerInputs(context);
  const branches = (['then_branch', 'else_branch'] as const).map((name) => {
    const graph = graphAttributeOf(node, name);
    if (graph.output.length !== node.output.length) throw invalidNode(node, `${name} has ${graph.output.length} outputs, the node ${node.output.length}`);
    outputTypesOf(node, graph, 0, context.outputTypes).forEach((datatype, index) => {
      if (datatype !== context.outputTypes[index]) throw invalidNode(node, `${name} output ${index} is ${datatype}, then_branch's is ${context.outputTypes[index]}`);
    });
    return compileBody(context, table, name, graph, outer);
  });
  addCopies(table, context, context.outputTypes);
  return {
    kind: 'kernel', variants: table.variants,
    plan(inputs, maxPerDimension) {
      const condition = inputs[0]?.value;
      if (!condition) throw new Error(`If '${node.name}': the condition is not known on the host`);
      const program = new SubgraphProgram({ node, precision: context.precision, table }, scratchUnit(context), maxPerDimension);
      const results = program.runBody(branches[truthy(condition) ? 0 : 1], boundOuter(node, inputs));
      return finish(program, results.map((result, index) => ({ ...result, datatype: context.outputTypes[index] })));
    },
  } satisfies DeviceOperator;
}

/**
 * The inputs a Loop body takes, carried values' types from the node. The iteration number and the
 * condition are given to the body as the lengths of two carrier inputs, which the body's Shape
 * nodes read on the host: placement puts graph inputs on the GPU, while a value the plan knows per
 * iteration must stay on the host for the body's shape computations (Slice's starts from the
 * iteration number) to be folded per iteration.
 */
function loopPrelude(node: NodeProto, body: GraphProto): { inputs: BodyInput[]; prelude: NodeProto[] } {
  const [iteration, condition] = body.input.slice(0, 2).map((value) => value.name);
  const carriers: [string, string] = [`${node.name}::iteration_carrier`, `${node.name}::condition_carrier`];
  const scalar = `${node.name}::scalar_shape`;
  const prelude: NodeProto[] = [];
  const make = (opType: string, input: string[], output: string, attribute: NodeProto['attribute'] = []) =>
    prelude.push({ opType, input, output: [output], name: `${node.name}::${output}`, domain: '', docString: '', attribute });
  make('Constant', [], scalar, [{
    name: 'value', type: 4, f: 0, i: 0, s: new Uint8Array(), g: undefined, floats: [], ints: [], strings: [], tensors: [], graphs: [],
    t: { name: '', dims: [0], dataType: 7, rawData: new Uint8Array(), floatData: [], int32Data: [], stringData: [], int64Data: [], doubleData: [], uint64Data: [], docString: '', externalData: [], dataLocation: 0 },
  }]);
  if (iteration) {
    make('Shape', [carriers[0]], `${iteration}::length`);
    make('Reshape', [`${iteration}::length`, scalar], iteration);
  }
  if (condition) {
    make('Shape', [carriers[1]], `${condition}::length`);
    make('Reshape', [`${condition}::length`, scalar], `${condition}::count`);
    make('Cast', [`${condition}::count`], condition, [{
      name: 'to', type: 2, f: 0, i: 9, s: new Uint8Array(), t: undefined, g: undefined, floats: [], ints: [], strings: [], tensors: [], graphs: [],
    }]);
  }
  const inputs: BodyInput[] = carriers.map((name) => ({ name, datatype: 'INT64' }));
  return { inputs, prelude };
}

const computedCondition = (node: NodeProto, name: string) =>
  unsupported(node, `a condition its body computes on the GPU (${name}); a loop's condition must come from the host (iteration number, constants, shapes)`);

function loopDevice(context: LoadContext): DeviceOperator {
  const { node } = context;
  const graph = graphAttributeOf(node, 'body');
  const carried = graph.input.length - 2;
  const scans = node.output.length - carried;
  const table = new VariantTable();
  const { inputs: carrierInputs, prelude } = loopPrelude(node, graph);
  const carriedInputs: BodyInput[] = graph.input.slice(2).map((value, index) => ({ name: value.name, datatype: context.outputTypes[index] }));
  const body = compileBody(context, table, 'body', graph, [...carrierInputs, ...carriedInputs, ...outerInputs(context)], prelude);
  const { tail } = controlFlowLayout(node);
  // What a plan would refuse anyway is refused at load when it is already known: a constant trip
  // count past the budget, when the body passes its condition through (else it may stop sooner).
  const tripCount = context.inputs[0]?.constant;
  const [conditionIn, conditionOut] = [graph.input[1].name, graph.output[0].name];
  const passesCondition = conditionOut === conditionIn
    || graph.node.some((inner) => inner.opType === 'Identity' && inner.input[0] === conditionIn && inner.output[0] === conditionOut);
  if (tripCount && passesCondition && Number(toNumbers(tripCount)[0]) > MAX_LOOP_ITERATIONS) {
    throw failedPrecondition(`Loop '${node.name}' runs more than ${MAX_LOOP_ITERATIONS} iterations, the most one plan unrolls (its trip count is ${toNumbers(tripCount)[0]})`);
  }
  if (body.graph.locations.get(body.outputs[0]) === 'device') throw computedCondition(node, body.outputs[0]);
  const scanShapes = graph.output.slice(1 + carried).map((value) => declaredShape(value));
  addCopies(table, context, context.outputTypes);
  return {
    kind: 'kernel', variants: table.variants,
    plan(inputs, maxPerDimension) {
      const program = new SubgraphProgram({ node, precision: context.precision, table }, scratchUnit(context), maxPerDimension);
      const tripCount = inputs[0] ? Number(toNumbers(inputs[0].value!)[0]) : Infinity;
      let condition = inputs[1] ? truthy(inputs[1].value!) : true;
      let state: BoundValue[] = inputs.slice(tail, tail + carried).map((input, index) => ({ shape: input!.shape, value: input!.value, ref: { input: tail + index } }));
      const outer = boundOuter(node, inputs);
      const scanOutputs: Array<{ shape: readonly number[] } | undefined> = Array.from({ length: scans }, () => undefined);
      // Scan outputs are written at their place as each iteration ends; their buffers are the node's outputs.
      let iteration = 0;
      for (; iteration < tripCount && condition; iteration++) {
        if (iteration >= MAX_LOOP_ITERATIONS) {
          throw failedPrecondition(`Loop '${node.name}' runs more than ${MAX_LOOP_ITERATIONS} iterations, the most one plan unrolls`);
        }
        const carriers: BoundValue[] = [iteration, condition ? 1 : 0].map((length) => ({ shape: [length], value: undefined, ref: { placeholder: true } }));
        const results = program.runBody(body, [...carriers, ...state, ...outer]);
        const next = results[0].value;
        if (!next) throw computedCondition(node, body.outputs[0]);
        condition = truthy(next);
        const previous = state;
        state = results.slice(1, 1 + carried);
        results.slice(1 + carried).forEach((result, index) => {
          const previous = scanOutputs[index];
          if (previous && previous.shape.join() !== result.shape.join()) {
            throw failedPrecondition(`Loop '${node.name}': scan output '${body.outputs[1 + carried + index]}' is [${result.shape}] in iteration ${iteration}, [${previous.shape}] before`);
          }
          scanOutputs[index] = result;
          const size = result.shape.reduce((total, dim) => total * dim, 1);
          program.copy(context.outputTypes[carried + index], result.ref, { output: carried + index }, [size], { outOffset: iteration * size });
        });
        // The last iteration's values and this one's scan outputs are read by now; what is carried on stays.
        program.release([...previous, ...results.slice(1 + carried)].map((value) => value.ref), state.map((value) => value.ref));
      }
      const carriedResults = state.map((value, index) => ({ ...value, datatype: context.outputTypes[index] }));
      carriedResults.forEach((result, index) => program.copy(result.datatype, result.ref, { output: index }, result.shape));
      const scanShapesOut = scanOutputs.map((output, index) => [iteration, ...(output?.shape ?? scanShapes[index] ?? [])]);
      return { outputShapes: [...state.map((value) => [...value.shape]), ...scanShapesOut], dispatches: program.dispatches, scratch: program.scratch, tables: program.tables };
    },
  } satisfies DeviceOperator;
}

function scanDevice(context: LoadContext): DeviceOperator {
  const { node } = context;
  const graph = graphAttributeOf(node, 'body');
  const batched = context.opset < 9;
  const { tail } = controlFlowLayout(node);
  const table = new VariantTable();
  const bodyInputs: BodyInput[] = graph.input.map((value, index) => {
    const datatype = declaredDatatype(value) ?? context.inputs[tail + index]?.datatype;
    if (!datatype) throw invalidNode(node, `body input '${value.name}' has no type`);
    return { name: value.name, datatype };
  });
  const body: CompiledBody = compileBody(context, table, 'body', graph, [...bodyInputs, ...outerInputs(context)]);
  addCopies(table, context, [...context.outputTypes, ...bodyInputs.map((input) => input.datatype)]);
  return {
    kind: 'kernel', variants: table.variants,
    plan(inputs, maxPerDimension) {
      const program = new SubgraphProgram({ node, precision: context.precision, table }, scratchUnit(context), maxPerDimension);
      return scanPlan({
        node, program, body, inputs, first: tail, batched,
        inputTypes: bodyInputs.map((input) => input.datatype), outputTypes: context.outputTypes,
        outer: boundOuter(node, inputs), declaredScanShapes: graph.output.map((value) => declaredShape(value)),
      });
    },
  } satisfies DeviceOperator;
}

/** If, Loop and Scan as the GPU runs them (ops/control-flow.ts holds the rest of their specs). */
export const CONTROL_FLOW_DEVICES: ControlFlowDevices = { If: ifDevice, Loop: loopDevice, Scan: scanDevice };
