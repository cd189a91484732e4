/**
 * RNN, GRU and LSTM (opsets 7, 14 and 22; GRU 3 too): every direction (forward, reverse,
 * bidirectional), initial_h / initial_c, sequence_lens (read on the host: it picks which steps
 * each batch row takes), LSTM's peepholes and input_forget, GRU's linear_before_reset, the
 * activations ONNX lists with activation_alpha / activation_beta, clip, layout (opset 14) and
 * all three outputs. On the GPU: one GEMM X · W^T for every step, then one small kernel per
 * time step (kernels/recurrent.ts); the sequence length is known when the plan is made.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { Datatype } from '../../onnx/datatypes.ts';
import type { NodeProto } from '../../onnx/model.ts';
import { AttributeProto_AttributeType as AttributeType } from '../../protocol/generated/onnx/onnx.ts';
import {
  GATES, RECURRENT_ACTIVATIONS, recurrentLoadDispatch, recurrentProjectionDispatch, recurrentStepDispatch, recurrentStoreDispatch, recurrentVariants,
  stateLayout, type RecurrentActivation, type RecurrentActivationName, type RecurrentCell, type RecurrentProblem, type StepSettings,
} from '../kernels/recurrent.ts';
import { sameShape, toNumbers } from '../tensor/index.ts';
import { attributeOf, booleanAttribute, enumAttribute, floatAttribute, intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { BindingRef, NodeInput, OperatorSpec, PlannedKernel } from './contract.ts';
import { required } from './parameters.ts';
import { floatStorage } from './spec-parts.ts';

const DIRECTIONS = ['forward', 'reverse', 'bidirectional'] as const;

/** Activations per direction and their defaults (f; f, g; f, g, h). */
const DEFAULT_ACTIVATIONS: Readonly<Record<RecurrentCell, readonly RecurrentActivationName[]>> = {
  rnn: ['Tanh'], gru: ['Sigmoid', 'Tanh'], lstm: ['Sigmoid', 'Tanh', 'Tanh'],
};

/** Which activations read alpha / beta, with the defaults onnxruntime uses when the lists run out. */
const ACTIVATION_PARAMETERS: Partial<Record<RecurrentActivationName, { alpha: number; beta?: number }>> = {
  Affine: { alpha: 1, beta: 0 }, LeakyRelu: { alpha: 0.01 }, ThresholdedRelu: { alpha: 1 }, ScaledTanh: { alpha: 1, beta: 1 },
  HardSigmoid: { alpha: 0.2, beta: 0.5 }, Elu: { alpha: 1 },
};

/** The node's attributes as the kernels take them. */
interface RecurrentAttributes {
  readonly cell: RecurrentCell;
  readonly directions: number;
  readonly reverseMask: number;
  readonly hiddenSize: number | undefined;
  readonly batchFirst: boolean;
  readonly clip: number | undefined;
  readonly linearBeforeReset: boolean;
  readonly inputForget: boolean;
  readonly activations: readonly RecurrentActivation[];
}

function floatsAttribute(node: NodeProto, name: string): number[] {
  const attribute = attributeOf(node, name);
  if (!attribute) return [];
  if (attribute.type !== AttributeType.FLOATS) throw unsupported(node, `attribute ${name} of type ${attribute.type} (expected FLOATS)`);
  return [...attribute.floats];
}

function stringsAttribute(node: NodeProto, name: string): string[] | undefined {
  const attribute = attributeOf(node, name);
  if (!attribute) return undefined;
  if (attribute.type !== AttributeType.STRINGS) throw unsupported(node, `attribute ${name} of type ${attribute.type} (expected STRINGS)`);
  return attribute.strings.map((bytes) => new TextDecoder().decode(bytes));
}

/**
 * Slot d * 3 + k: direction d's k-th activation. alpha and beta are consumed in the order of the
 * activations, by those that take them; a bidirectional node may list one direction's
 * activations for both.
 */
function resolveActivations(node: NodeProto, cell: RecurrentCell, directions: number): RecurrentActivation[] {
  const perDirection = DEFAULT_ACTIVATIONS[cell].length;
  const listed = stringsAttribute(node, 'activations') ?? Array.from({ length: directions }, () => DEFAULT_ACTIVATIONS[cell]).flat();
  const names = listed.length === perDirection && directions === 2 ? [...listed, ...listed] : listed;
  if (names.length !== perDirection * directions) {
    throw invalidNode(node, `activations lists ${listed.length} functions; ${node.opType} with ${directions} direction(s) takes ${perDirection * directions}`);
  }
  const alphas = floatsAttribute(node, 'activation_alpha');
  const betas = floatsAttribute(node, 'activation_beta');
  let [nextAlpha, nextBeta] = [0, 0];
  const slots: RecurrentActivation[] = [];
  names.forEach((listedName, index) => {
    const name = RECURRENT_ACTIVATIONS.find((known) => known.toLowerCase() === listedName.toLowerCase());
    if (!name) throw unsupported(node, `activation '${listedName}' (supported: ${RECURRENT_ACTIVATIONS.join(', ')})`);
    const parameters = ACTIVATION_PARAMETERS[name];
    const alpha = parameters ? alphas[nextAlpha++] ?? parameters.alpha : 0;
    const beta = parameters?.beta !== undefined ? betas[nextBeta++] ?? parameters.beta : 0;
    slots[Math.floor(index / perDirection) * 3 + (index % perDirection)] = { name, alpha, beta };
  });
  return slots;
}

function recurrentAttributes(node: NodeProto, cell: RecurrentCell): RecurrentAttributes {
  const direction = enumAttribute(node, 'direction', DIRECTIONS, 'forward');
  const directions = direction === 'bidirectional' ? 2 : 1;
  const hidden = attributeOf(node, 'hidden_size') ? intAttribute(node, 'hidden_size', 0) : undefined;
  if (hidden !== undefined && hidden < 1) throw invalidNode(node, `hidden_size=${hidden} (it must be at least 1)`);
  const clip = attributeOf(node, 'clip') ? floatAttribute(node, 'clip', 0) : undefined;
  if (clip !== undefined && !(clip > 0)) throw invalidNode(node, `clip=${clip} (a threshold must be positive)`);
  return {
    cell, directions, reverseMask: direction === 'reverse' ? 1 : direction === 'bidirectional' ? 2 : 0, hiddenSize: hidden,
    batchFirst: booleanAttribute(node, 'layout'), clip,
    linearBeforeReset: cell === 'gru' && booleanAttribute(node, 'linear_before_reset'),
    inputForget: cell === 'lstm' && booleanAttribute(node, 'input_forget'),
    activations: resolveActivations(node, cell, directions),
  };
}

const INPUT_NAMES = ['X', 'W', 'R', 'B', 'sequence_lens', 'initial_h', 'initial_c', 'P'];

function expectShape(index: number, shape: readonly number[], expected: readonly number[]): void {
  if (!sameShape(shape, expected)) throw invalidArgument(`input '${INPUT_NAMES[index]}' has shape [${shape.join(", ")}], expected [${expected.join(", ")}]`);
}

/** Each batch row's sequence length: sequence_lens, or every step. */
function sequenceLengths(inputs: ReadonlyArray<NodeInput | undefined>, timeSteps: number, batch: number): number[] {
  const given = inputs[4];
  if (!given) return new Array<number>(batch).fill(timeSteps);
  if (!given.value) throw new Error('sequence_lens has no host value');
  const lengths = toNumbers(given.value);
  if (lengths.length !== batch) throw invalidArgument(`input 'sequence_lens' has ${lengths.length} values for a batch of ${batch}`);
  const bad = lengths.find((length) => !Number.isInteger(length) || length < 0 || length > timeSteps);
  if (bad !== undefined) throw invalidArgument(`input 'sequence_lens' holds ${bad}; each length must be in [0, ${timeSteps}]`);
  return lengths;
}

function recurrentSpec(cell: RecurrentCell): OperatorSpec {
  const inputCount = cell === 'lstm' ? 8 : 6;
  const outputCount = cell === 'lstm' ? 3 : 2;
  return {
    attributes: [
      'activation_alpha', 'activation_beta', 'activations', 'clip', 'direction', 'hidden_size', 'layout',
      ...(cell === 'gru' ? ['linear_before_reset'] : []), ...(cell === 'lstm' ? ['input_forget'] : []),
    ],
    inputs: [3, inputCount],
    outputs: [1, outputCount],
    computesEveryOutput: true,
    firstOutputOptional: true,
    parameters: [4],
    types: ({ inputTypes }): Datatype[] => new Array<Datatype>(outputCount).fill(inputTypes[0] ?? 'FP32'),
    validate: (node) => { recurrentAttributes(node, cell); },
    device(context) {
      const { node } = context;
      const attributes = recurrentAttributes(node, cell);
      const type = floatStorage(context);
      const has = (index: number) => Boolean(node.input[index]);
      const named = (index: number) => Boolean(node.output[index]);
      const optional = (index: number): BindingRef => (has(index) ? { input: index } : { placeholder: true });
      const output = (index: number): BindingRef => (named(index) ? { output: index } : { placeholder: true });
      const gates = GATES[cell];
      return {
        kind: 'kernel',
        variants: recurrentVariants(type, cell, context.traits.gemmAlgorithm),
        plan(inputs, maxPerDimension) {
          const xShape = required(inputs, 0).shape;
          if (xShape.length !== 3) throw invalidArgument(`input 'X' has shape [${xShape}], expected 3 dims`);
          const [timeSteps, batch, inputSize] = attributes.batchFirst ? [xShape[1], xShape[0], xShape[2]] : xShape;
          const rShape = required(inputs, 2).shape;
          const hidden = attributes.hiddenSize ?? rShape[2];
          const directions = attributes.directions;
          expectShape(1, required(inputs, 1).shape, [directions, gates * hidden, inputSize]);
          expectShape(2, rShape, [directions, gates * hidden, hidden]);
          if (has(3)) expectShape(3, required(inputs, 3).shape, [directions, 2 * gates * hidden]);
          if (has(7)) expectShape(7, required(inputs, 7).shape, [directions, 3 * hidden]);
          const stateShape = attributes.batchFirst ? [batch, directions, hidden] : [directions, batch, hidden];
          for (const index of [5, 6]) if (has(index)) expectShape(index, required(inputs, index).shape, stateShape);
          const lengths = sequenceLengths(inputs, timeSteps, batch);

          const problem: RecurrentProblem = { cell, timeSteps, directions, batch, inputSize, hidden };
          const layout = stateLayout(problem);
          const stateStrides = attributes.batchFirst ? { direction: hidden, batch: directions * hidden } : { direction: batch * hidden, batch: hidden };
          const settings: StepSettings = {
            reverseMask: attributes.reverseMask,
            yStrides: attributes.batchFirst
              ? { time: directions * hidden, direction: hidden, batch: timeSteps * directions * hidden }
              : { time: directions * batch * hidden, direction: batch * hidden, batch: hidden },
            writeY: named(0), hasBias: has(3), hasPeepholes: has(7), linearBeforeReset: attributes.linearBeforeReset,
            inputForget: attributes.inputForget, clip: attributes.clip, activations: attributes.activations,
            // The projection's rows follow X's: (t, b) with layout 0, (b, t) with layout 1.
            projectionStrides: attributes.batchFirst
              ? { time: directions * gates * hidden, batch: timeSteps * directions * gates * hidden }
              : { time: batch * directions * gates * hidden, batch: directions * gates * hidden },
            recurrentBiasRows: attributes.linearBeforeReset ? 2 * hidden : gates * hidden,
          };
          // An unnamed Y gets a one-element scratch: the shared placeholder is also bound read-only here.
          const stepBindings: BindingRef[] = [{ scratch: 0 }, { input: 2 }, optional(3), optional(7), { table: 0 }, { scratch: 1 }, named(0) ? { output: 0 } : { scratch: 2 }];
          const dispatches: PlannedKernel[] = [
            {
              ...recurrentProjectionDispatch(problem, context.traits.gemmAlgorithm, maxPerDimension),
              bindings: [{ input: 0 }, { input: 1 }, { placeholder: true }, { placeholder: true }, { scratch: 0 }],
            },
            { ...recurrentLoadDispatch(problem, layout, stateStrides, has(5), has(6), maxPerDimension), bindings: [optional(5), optional(6), { scratch: 1 }] },
          ];
          const twoPhases = cell === 'gru' && !attributes.linearBeforeReset;
          for (let step = 0; step < timeSteps; step++) {
            if (twoPhases) dispatches.push({ ...recurrentStepDispatch(problem, layout, settings, step, 0, maxPerDimension), bindings: stepBindings });
            dispatches.push({ ...recurrentStepDispatch(problem, layout, settings, step, 1, maxPerDimension), bindings: stepBindings });
          }
          // Without Y_h and Y_c there is nothing to store (and two writable placeholders would alias).
          if (named(1) || named(2)) {
            dispatches.push({
              ...recurrentStoreDispatch(problem, layout, stateStrides, named(1), named(2), maxPerDimension),
              bindings: [{ scratch: 1 }, output(1), output(2)],
            });
          }
          const yShape = attributes.batchFirst ? [batch, timeSteps, directions, hidden] : [timeSteps, directions, batch, hidden];
          return {
            outputShapes: [yShape, stateShape, stateShape].slice(0, outputCount),
            dispatches,
            scratch: [timeSteps * directions * batch * gates * hidden, layout.elements, 1],
            // A binding is never empty: one length stands in for an empty batch.
            tables: [Uint32Array.from(lengths.length ? lengths : [0])],
          };
        },
      };
    },
  };
}

export const rnnSpec = recurrentSpec('rnn');
export const gruSpec = recurrentSpec('gru');
export const lstmSpec = recurrentSpec('lstm');
