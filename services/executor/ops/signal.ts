/**
 * Fourier transforms on the GPU: DFT (opset 17: axis an attribute; 20: axis an input) and STFT
 * (17), both on the direct DFT kernel (kernels/signal.ts): forward and inverse, real or complex
 * input, one-sided output for real input, a dft_length that pads with zeros or truncates, STFT's
 * window and frame_length. The scalars (dft_length, axis, frame_step, frame_length) are read on
 * the host, read back first when the GPU computes them.
 */
import type { NodeProto } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import { dftDispatch, dftTwiddles, dftVariant, type DftProblem } from '../kernels/signal.ts';
import { product, showShape, toNumbers } from '../tensor/index.ts';
import { attributeOf, booleanAttribute, intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { BindingRef, NodeInput, OperatorSpec } from './contract.ts';
import { parameterValue, required, type ParameterInputs } from './parameters.ts';
import { floatStorage, sameAsInput } from './spec-parts.ts';

/** The opset at which DFT's axis became an input (defaulting to -2). */
const DFT_AXIS_INPUT_OPSET = 20;

/** A scalar integer input read on the host, or `fallback` when the node omits it. */
function scalarParameter(inputs: ParameterInputs, index: number, what: string, fallback?: number): number {
  const tensor = parameterValue(inputs, index);
  if (!tensor) {
    if (fallback === undefined) throw invalidArgument(`${what} is required`);
    return fallback;
  }
  const values = toNumbers(tensor);
  if (values.length !== 1 || !Number.isInteger(values[0])) throw invalidArgument(`${what} must be one integer, got ${showShape(tensor.shape)} [${values.slice(0, 4)}]`);
  return values[0];
}

/** The last dim of a signal: 1 (real samples) or 2 (complex pairs). */
function componentsOf(shape: readonly number[], op: string): 1 | 2 {
  const components = shape[shape.length - 1];
  if (shape.length < 2 || (components !== 1 && components !== 2)) {
    throw invalidArgument(`${op} input ${showShape(shape)} needs its last dim to be 1 (real) or 2 (complex)`);
  }
  return components;
}

function checkOneSided(node: NodeProto, inverse: boolean): boolean {
  const onesided = booleanAttribute(node, 'onesided', node.opType === 'STFT');
  if (inverse && onesided) throw unsupported(node, 'inverse=1 with onesided=1 (the inverse of a one-sided spectrum)');
  return onesided;
}

export const dftSpec: OperatorSpec = {
  attributes: ['axis', 'inverse', 'onesided'],
  inputs: [1, 3],
  parameters: [1, 2],
  types: sameAsInput,
  validate(node, opset) {
    if (opset >= DFT_AXIS_INPUT_OPSET && attributeOf(node, 'axis')) {
      throw invalidNode(node, `has an 'axis' attribute, which DFT-${DFT_AXIS_INPUT_OPSET} replaced by its third input (the model is at opset ${opset})`);
    }
    if (opset < DFT_AXIS_INPUT_OPSET && node.input[2]) {
      throw invalidNode(node, `has an axis input, which DFT takes from opset ${DFT_AXIS_INPUT_OPSET} (the model is at ${opset}; use the 'axis' attribute)`);
    }
    checkOneSided(node, booleanAttribute(node, 'inverse'));
  },
  device(context) {
    const { node, opset } = context;
    const type = floatStorage(context);
    const inverse = booleanAttribute(node, 'inverse');
    const onesided = checkOneSided(node, inverse);
    return {
      kind: 'kernel',
      variants: [dftVariant(type, false)],
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        const components = componentsOf(shape, 'DFT');
        if (onesided && components === 2) throw invalidArgument('DFT onesided=1 needs a real input (last dim 1), the input is complex');
        const rank = shape.length;
        const declaredAxis = opset >= DFT_AXIS_INPUT_OPSET ? scalarParameter(inputs, 2, 'DFT axis', -2) : intAttribute(node, 'axis', 1);
        const axis = declaredAxis < 0 ? declaredAxis + rank : declaredAxis;
        if (axis < 0 || axis > rank - 2) throw invalidArgument(`DFT axis ${declaredAxis} must be in [${-rank}, -2] or [0, ${rank - 2}] for an input ${showShape(shape)}`);
        const length = shape[axis];
        const dftLength = scalarParameter(inputs, 1, 'DFT dft_length', length);
        if (dftLength < 1) throw invalidArgument(`DFT dft_length ${dftLength} must be at least 1`);
        const bins = onesided ? Math.floor(dftLength / 2) + 1 : dftLength;
        const problem: DftProblem = {
          outer: product(shape.slice(0, axis)), inner: product(shape.slice(axis + 1, rank - 1)), length, components,
          frames: 1, frameStep: 0, bins, terms: Math.min(length, dftLength), dftLength, inverse,
        };
        const outShape = [...shape.slice(0, axis), bins, ...shape.slice(axis + 1, rank - 1), 2];
        const bindings: BindingRef[] = [{ input: 0 }, { placeholder: true }, { table: 0 }, { output: 0 }];
        return { outputShapes: [outShape], dispatches: [{ ...dftDispatch(problem, maxPerDimension), bindings }], tables: [dftTwiddles(dftLength)] };
      },
    };
  },
};

/** STFT's frame length: its frame_length input, else its window's length; both must agree. */
function frameLengthOf(inputs: ReadonlyArray<NodeInput | undefined>): number {
  const window = inputs[2];
  const given = parameterValue(inputs, 3) ? scalarParameter(inputs, 3, 'STFT frame_length') : undefined;
  if (window && window.shape.length !== 1) throw invalidArgument(`STFT window ${showShape(window.shape)} must be 1-D`);
  if (window && given !== undefined && window.shape[0] !== given) {
    throw invalidArgument(`STFT window has ${window.shape[0]} values, frame_length is ${given}`);
  }
  const frameLength = given ?? window?.shape[0];
  if (frameLength === undefined) throw invalidArgument('STFT needs a window or a frame_length');
  if (frameLength < 1) throw invalidArgument(`STFT frame_length ${frameLength} must be at least 1`);
  return frameLength;
}

export const stftSpec: OperatorSpec = {
  attributes: ['onesided'],
  inputs: [2, 4],
  parameters: [1, 3],
  types: sameAsInput,
  validate: (node) => void checkOneSided(node, false),
  device(context) {
    const { node } = context;
    const type = floatStorage(context);
    const onesided = checkOneSided(node, false);
    const hasWindow = Boolean(node.input[2]);
    return {
      kind: 'kernel',
      variants: [dftVariant(type, hasWindow)],
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        if (shape.length !== 3) throw invalidArgument(`STFT signal ${showShape(shape)} must be [batch, length, 1 or 2]`);
        const components = componentsOf(shape, 'STFT');
        if (onesided && components === 2) throw invalidArgument('STFT onesided=1 (the default) needs a real signal (last dim 1), the signal is complex');
        const [batch, length] = shape;
        const frameStep = scalarParameter(inputs, 1, 'STFT frame_step');
        if (frameStep < 1) throw invalidArgument(`STFT frame_step ${frameStep} must be at least 1`);
        const frameLength = frameLengthOf(inputs);
        if (frameLength > length) throw invalidArgument(`STFT frame_length ${frameLength} exceeds the signal's ${length} samples`);
        const frames = Math.floor((length - frameLength) / frameStep) + 1;
        const bins = onesided ? Math.floor(frameLength / 2) + 1 : frameLength;
        const problem: DftProblem = {
          outer: batch, inner: 1, length, components, frames, frameStep, bins, terms: frameLength, dftLength: frameLength, inverse: false,
        };
        const bindings: BindingRef[] = [{ input: 0 }, hasWindow ? { input: 2 } : { placeholder: true }, { table: 0 }, { output: 0 }];
        return {
          outputShapes: [[batch, frames, bins, 2]], dispatches: [{ ...dftDispatch(problem, maxPerDimension), bindings }], tables: [dftTwiddles(frameLength)],
        };
      },
    };
  },
};
