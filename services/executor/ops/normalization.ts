/**
 * The normalizations: inference BatchNormalization (folded into a per-channel scale and shift
 * at load) and LayerNormalization (one row kernel invocation per normalized row; with its Mean /
 * InvStdDev outputs named, the group kernel of normalization-extra.ts).
 */
import { invalidArgument } from '../../domain/errors.ts';
import { channelAffineDispatch, channelAffineVariant, IDENTITY, layerNormDispatch, layerNormVariants } from '../kernels/index.ts';
import { normalizeAxis, product } from '../tensor/index.ts';
import { floatAttribute, intAttribute, unsupported } from './attributes.ts';
import type { OperatorSpec } from './contract.ts';
import { required } from './parameters.ts';
import { cpuLayerNorm, layerNormTypes, layerNormWithStatistics, namesLayerNormStatistics } from './normalization-extra.ts';
import { constantFloats, floatStorage, fp32, inputStorage, rowKernelMaxLength, sameAsInput } from './spec-parts.ts';

// BatchNormalization (inference) and pools

/** Per-channel scale and shift of an inference BatchNormalization: y = x * scale + shift. */
export function foldBatchNorm(gamma: Float32Array, beta: Float32Array, mean: Float32Array, variance: Float32Array, epsilon: number) {
  const scale = new Float32Array(gamma.length);
  const shift = new Float32Array(gamma.length);
  for (let c = 0; c < gamma.length; c++) {
    scale[c] = gamma[c] / Math.sqrt(variance[c] + epsilon);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
  return { scale, shift };
}

export const batchNormSpec: OperatorSpec = {
  attributes: ['epsilon', 'momentum', 'training_mode', 'spatial'],
  inputs: [5, 5],
  outputs: [1, 5],
  types: sameAsInput,
  validate(node) {
    if (intAttribute(node, 'training_mode', 0) !== 0) throw unsupported(node, 'training_mode=1 (inference only)');
    if (intAttribute(node, 'spatial', 1) !== 1) throw unsupported(node, 'spatial=0');
  },
  device(context) {
    const type = floatStorage(context);
    const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((index) => constantFloats(context, index, 'statistics').values);
    const { scale, shift } = foldBatchNorm(gamma, beta, mean, variance, floatAttribute(context.node, 'epsilon', 1e-5));
    const scaleName = context.addConstant('scale', fp32([scale.length], scale));
    const shiftName = context.addConstant('shift', fp32([shift.length], shift));
    const activation = context.epilogue?.activation ?? IDENTITY;
    return {
      kind: 'kernel',
      variants: [channelAffineVariant(type)],
      plan(inputs, maxPerDimension) {
        const shape = [...required(inputs, 0).shape];
        if (shape.length < 2 || shape[1] !== scale.length) throw invalidArgument(`BatchNormalization input [${shape}] needs ${scale.length} channels in dim 1`);
        return {
          outputShapes: [shape],
          dispatches: [{ ...channelAffineDispatch(shape, activation, maxPerDimension), bindings: [{ input: 0 }, { value: scaleName }, { value: shiftName }, { output: 0 }] }],
        };
      },
    };
  },
};

export const layerNormSpec: OperatorSpec = {
  attributes: ['axis', 'epsilon', 'stash_type'],
  inputs: [2, 3],
  outputs: [1, 3],
  computesEveryOutput: true,
  types: layerNormTypes,
  cpu: cpuLayerNorm,
  device(context) {
    const { node } = context;
    if (namesLayerNormStatistics(node)) return layerNormWithStatistics(context);
    const axis = intAttribute(node, 'axis', -1);
    const epsilon = floatAttribute(node, 'epsilon', 1e-5);
    const hasBias = Boolean(context.inputs[2]?.name);
    const storage = inputStorage(context, 0);
    const maxRowLength = rowKernelMaxLength(context.traits);
    return {
      kind: 'kernel',
      variants: layerNormVariants(storage, hasBias),
      plan(inputs, maxPerDimension) {
        const shape = [...required(inputs, 0).shape];
        const split = normalizeAxis(axis, shape.length);
        const rows = product(shape.slice(0, split));
        const length = product(shape.slice(split));
        const scaleCount = product(required(inputs, 1).shape);
        const biasCount = hasBias ? product(required(inputs, 2).shape) : 1;
        for (const [what, count] of [['Scale', scaleCount], ['B', biasCount]] as const) {
          if (count !== length && count !== 1) throw invalidArgument(`LayerNormalization ${what} has ${count} elements, the normalized dims ${length}`);
        }
        return {
          outputShapes: [shape],
          dispatches: [{
            ...layerNormDispatch(rows, length, epsilon, scaleCount, biasCount, maxPerDimension, maxRowLength),
            bindings: [{ input: 0 }, { input: 1 }, hasBias ? { input: 2 } : { placeholder: true }, { output: 0 }],
          }],
        };
      },
    };
  },
};
