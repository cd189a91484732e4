/**
 * The normalizations: inference BatchNormalization (folded into a per-channel scale and shift,
 * at load for constant statistics, per plan for ones given at run time) and LayerNormalization
 * (one row kernel invocation per normalized row; with its Mean / InvStdDev outputs named, the
 * group kernel of normalization-extra.ts).
 */
import { invalidArgument } from '../../domain/errors.ts';
import { channelAffineDispatch, channelAffineVariant, IDENTITY, layerNormDispatch, layerNormVariants } from '../kernels/index.ts';
import { normalizeAxis, numberView, product, type StorageType } from '../tensor/index.ts';
import { floatAttribute, intAttribute, unsupported } from './attributes.ts';
import type { BindingRef, LoadContext, NodeInput, OperatorSpec } from './contract.ts';
import { parameterValue, required } from './parameters.ts';
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

/** The words of a per-channel table in the storage type the affine kernel reads (f16 pairs, or f32). */
function channelTable(values: Float32Array, type: StorageType): Uint32Array {
  if (type !== 'f16') return new Uint32Array(values.buffer, values.byteOffset, values.length);
  const halves = new Float16Array(values.length + (values.length % 2));
  halves.set(values);
  return new Uint32Array(halves.buffer);
}

export const batchNormSpec: OperatorSpec = {
  attributes: ['epsilon', 'momentum', 'training_mode', 'spatial'],
  inputs: [5, 5],
  outputs: [1, 5],
  // Statistics, scale and bias given at run time are read on the host and folded per plan.
  parameters: [1, 2, 3, 4],
  types: sameAsInput,
  validate(node) {
    // training_mode=1 runs by its own spec (batchnorm-training.ts, which the registry picks).
    const trainingMode = intAttribute(node, 'training_mode', 0);
    if (trainingMode !== 0) throw unsupported(node, `training_mode=${trainingMode} (expected 0 or 1)`);
    if (intAttribute(node, 'spatial', 1) !== 1) throw unsupported(node, 'spatial=0');
  },
  device(context) {
    const type = floatStorage(context);
    const epsilon = floatAttribute(context.node, 'epsilon', 1e-5);
    const activation = context.epilogue?.activation ?? IDENTITY;
    // Constant statistics are folded once, at load, into two constants.
    const atLoad = [1, 2, 3, 4].every((index) => context.inputs[index]?.constant) ? foldAtLoad(context, epsilon) : undefined;
    return {
      kind: 'kernel',
      variants: [channelAffineVariant(type)],
      plan(inputs, maxPerDimension) {
        const shape = [...required(inputs, 0).shape];
        const perPlan = atLoad ? undefined : foldPerPlan(inputs, epsilon);
        const channels = atLoad?.channels ?? perPlan!.scale.length;
        if (shape.length < 2 || shape[1] !== channels) throw invalidArgument(`BatchNormalization input [${shape}] needs ${channels} channels in dim 1`);
        const affine: BindingRef[] = atLoad ? [{ value: atLoad.scale }, { value: atLoad.shift }] : [{ table: 0 }, { table: 1 }];
        return {
          outputShapes: [shape],
          dispatches: [{ ...channelAffineDispatch(shape, activation, maxPerDimension), bindings: [{ input: 0 }, ...affine, { output: 0 }] }],
          tables: perPlan ? [channelTable(perPlan.scale, type), channelTable(perPlan.shift, type)] : undefined,
        };
      },
    };
  },
};

/** Constant statistics folded into the names of two derived constants. */
function foldAtLoad(context: LoadContext, epsilon: number): { channels: number; scale: string; shift: string } {
  const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((index) => constantFloats(context, index, 'statistics').values);
  const { scale, shift } = foldBatchNorm(gamma, beta, mean, variance, epsilon);
  return { channels: scale.length, scale: context.addConstant('scale', fp32([scale.length], scale)), shift: context.addConstant('shift', fp32([shift.length], shift)) };
}

/** Statistics given at run time (read on the host for this plan) folded into scale and shift. */
function foldPerPlan(inputs: ReadonlyArray<NodeInput | undefined>, epsilon: number): { scale: Float32Array; shift: Float32Array } {
  const [gamma, beta, mean, variance] = [1, 2, 3, 4].map((index) => {
    const tensor = parameterValue(inputs, index);
    if (!tensor) throw new Error(`BatchNormalization input ${index} has no host value`);
    return Float32Array.from(numberView(tensor));
  });
  if (![beta, mean, variance].every((values) => values.length === gamma.length)) {
    const counts = [gamma, beta, mean, variance].map((values) => values.length);
    throw invalidArgument(`BatchNormalization scale, B, mean and var have ${counts.join(', ')} elements; they must have one per channel`);
  }
  return foldBatchNorm(gamma, beta, mean, variance, epsilon);
}

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
