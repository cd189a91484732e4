/**
 * Scan's plan: the body unrolled over the scan axis. Each iteration's slice of every scan input
 * is copied out (forwards or in reverse) into scratch the body reads, the state is carried from
 * one iteration to the next, and each scan output is copied into its place along its axis of the
 * node's output. Opset 8's Scan has a batch axis first on every input and output: the whole scan
 * runs once per batch entry.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { NodeProto } from '../../onnx/model.ts';
import { failedPrecondition } from '../../domain/errors.ts';
import type { NodeInput, OperatorPlan } from '../ops/index.ts';
import { intAttribute, intsAttribute, invalidNode } from '../ops/attributes.ts';
import { normalizeAxis, stridesOf } from '../tensor/index.ts';
import type { BoundValue, CompiledBody, SubgraphProgram } from './subgraph.ts';

export interface ScanRun {
  readonly node: NodeProto;
  readonly program: SubgraphProgram;
  readonly body: CompiledBody;
  readonly inputs: ReadonlyArray<NodeInput | undefined>;
  /** Where the states, then the scan inputs, start among the node's inputs (controlFlowLayout's tail). */
  readonly first: number;
  /** Opset 8: a batch axis leads every input and output. */
  readonly batched: boolean;
  /** The body's input types (states, then scan slices). */
  readonly inputTypes: readonly Datatype[];
  readonly outputTypes: readonly Datatype[];
  readonly outer: readonly BoundValue[];
  /** Each body output's declared shape: a scan output's shape when there are no iterations. */
  readonly declaredScanShapes: ReadonlyArray<number[] | undefined>;
}

const without = <T>(values: readonly T[], index: number): T[] => values.filter((_, at) => at !== index);

export function scanPlan(run: ScanRun): OperatorPlan {
  const { node, program, body, inputs, batched, first } = run;
  const scanCount = intAttribute(node, 'num_scan_inputs', 0);
  const stateCount = run.inputTypes.length - scanCount;
  const outputCount = run.outputTypes.length - stateCount;
  const shapeOf = (index: number) => inputs[first + index]!.shape;
  const scanShapes = Array.from({ length: scanCount }, (_, index) => shapeOf(stateCount + index));
  const inputAxes = batched ? scanShapes.map(() => 1) : (intsAttribute(node, 'scan_input_axes') ?? scanShapes.map(() => 0))
    .map((axis, index) => normalizeAxis(axis, scanShapes[index].length));
  const inputDirections = intsAttribute(node, batched ? 'directions' : 'scan_input_directions') ?? scanShapes.map(() => 0);
  const outputDirections = batched ? [] : intsAttribute(node, 'scan_output_directions') ?? [];
  const length = scanShapes[0][inputAxes[0]];
  scanShapes.forEach((shape, index) => {
    if (shape[inputAxes[index]] !== length) {
      throw failedPrecondition(`Scan '${node.name}': scan input ${index} [${shape}] has ${shape[inputAxes[index]]} along axis ${inputAxes[index]}, scan input 0 has ${length}`);
    }
  });
  const batch = batched ? shapeOf(0)[0] : 1;
  if (batched) {
    for (let index = 0; index < stateCount + scanCount; index++) {
      if (shapeOf(index)[0] !== batch) throw invalidNode(node, `state or scan input ${index} [${shapeOf(index)}] does not start with the batch size ${batch}`);
    }
  }

  const stateShapes: Array<readonly number[]> = [];
  const scanOutputShapes: Array<readonly number[] | undefined> = Array.from({ length: outputCount }, () => undefined);
  for (let entry = 0; entry < batch; entry++) {
    let state: BoundValue[] = Array.from({ length: stateCount }, (_, index): BoundValue => {
      const shape = shapeOf(index);
      if (!batched) return { shape, value: inputs[first + index]!.value, ref: { input: first + index } };
      const sliceShape = shape.slice(1);
      const ref = program.scratchFor(sliceShape, run.inputTypes[index]);
      program.copy(run.inputTypes[index], { input: first + index }, ref, sliceShape, { inStrides: stridesOf(shape).slice(1), inOffset: entry * stridesOf(shape)[0] });
      return { shape: sliceShape, value: undefined, ref };
    });
    for (let step = 0; step < length; step++) {
      const slices = scanShapes.map((shape, index): BoundValue => {
        const axis = inputAxes[index];
        const strides = stridesOf(shape);
        const position = inputDirections[index] === 1 ? length - 1 - step : step;
        const sliceShape = without(without(shape, axis), batched ? 0 : -1);
        const sliceStrides = without(without(strides, axis), batched ? 0 : -1);
        const datatype = run.inputTypes[stateCount + index];
        const ref = program.scratchFor(sliceShape, datatype);
        program.copy(datatype, { input: first + stateCount + index }, ref, sliceShape, {
          inStrides: sliceStrides, inOffset: position * strides[axis] + (batched ? entry * strides[0] : 0),
        });
        return { shape: sliceShape, value: undefined, ref };
      });
      const results = program.runBody(body, [...state, ...slices, ...run.outer]);
      const previous = state;
      state = results.slice(0, stateCount);
      results.slice(stateCount).forEach((result, index) => {
        const previous = scanOutputShapes[index];
        if (previous && previous.join() !== result.shape.join()) {
          throw failedPrecondition(`Scan '${node.name}': scan output ${index} is [${result.shape}] in iteration ${step}, [${previous}] before`);
        }
        scanOutputShapes[index] = result.shape;
        const { shape, axis } = scanOutputLayout(run, index, result.shape, length, batch);
        const strides = stridesOf(shape);
        const position = outputDirections[index] === 1 ? length - 1 - step : step;
        program.copy(run.outputTypes[stateCount + index], result.ref, { output: stateCount + index }, result.shape, {
          outStrides: without(without(strides, axis), batched ? 0 : -1),
          outOffset: position * strides[axis] + (batched ? entry * strides[0] : 0),
        });
      });
      // Slices, the previous state and this step's scan outputs are read by now; the state carried on stays.
      program.release([...previous, ...slices, ...results.slice(stateCount)].map((value) => value.ref), state.map((value) => value.ref));
    }
    state.forEach((value, index) => {
      stateShapes[index] = value.shape;
      const full = batched ? [batch, ...value.shape] : value.shape;
      program.copy(run.outputTypes[index], value.ref, { output: index }, value.shape, { outOffset: batched ? entry * stridesOf(full)[0] : 0 });
    });
    program.release(state.map((value) => value.ref));
  }
  const scanOutputs = scanOutputShapes.map((shape, index) => scanOutputLayout(run, index, shape ?? run.declaredScanShapes[stateCount + index] ?? [], length, batch).shape);
  const states = Array.from({ length: stateCount }, (_, index) => {
    const shape = stateShapes[index] ?? (batched ? shapeOf(index).slice(1) : shapeOf(index));
    return batched ? [batch, ...shape] : [...shape];
  });
  return { outputShapes: [...states, ...scanOutputs], dispatches: program.dispatches, scratch: program.scratch, tables: program.tables };
}

/** Scan output `index`'s full shape (the per-iteration shape with the scan axis inserted) and that axis. */
function scanOutputLayout(run: ScanRun, index: number, shape: readonly number[], length: number, batch: number): { shape: number[]; axis: number } {
  if (run.batched) return { shape: [batch, length, ...shape], axis: 1 };
  const axes = intsAttribute(run.node, 'scan_output_axes') ?? [];
  const axis = normalizeAxis(axes[index] ?? 0, shape.length + 1);
  return { shape: [...shape.slice(0, axis), length, ...shape.slice(axis)], axis };
}
