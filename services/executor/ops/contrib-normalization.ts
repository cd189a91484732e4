/**
 * The layer normalizations of exported transformers:
 *   SkipLayerNormalization (com.microsoft): s = input + skip (+ bias); output = LayerNorm(s) * gamma (+ beta)
 *     over the last dim, epsilon 1e-12 by default; outputs mean, inv_std_var ([..., 1]) and s itself on request.
 *   SkipSimplifiedLayerNormalization (com.microsoft): the same sum, then RMS normalization
 *     s / sqrt(mean(s^2) + epsilon) * gamma; outputs inv_std_var (index 2) and s (index 3) on request.
 *   SimplifiedLayerNormalization (ORT registers it in the ONNX domain): X / sqrt(mean(X^2) + epsilon) * scale
 *     over the dims from `axis`, epsilon 1e-5; output 1 is inv_std_var.
 *   EmbedLayerNormalization (com.microsoft): LayerNorm(word[ids] + position[position_ids or 0..S-1]
 *     (+ segment[segment_ids])) * gamma + beta, epsilon 1e-12; mask_index (output 1) is the
 *     count of each row of the int32 mask, embedding_sum (output 2) the sum itself.
 * The sum is one Sum dispatch (into the sum output when it is named), the normalization the
 * LayerNormalization row or group kernel.
 */
import { invalidArgument } from '../../domain/errors.ts';
import { datatypeOfOnnxCode, type Datatype } from '../../onnx/datatypes.ts';
import { groupNormDispatch, groupNormVariants } from '../kernels/index.ts';
import { broadcastShapes, normalizeAxis, product, sameShape } from '../tensor/index.ts';
import { floatAttribute, intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { BindingRef, DeviceOperator, LoadContext, NodeInput, OperatorSpec, TypeContext } from './contract.ts';
import { gatherSpec } from './data-movement.ts';
import { layerNormSpec } from './normalization.ts';
import { reduceSpec } from './reduce.ts';
import { required } from './parameters.ts';
import { floatStorage, rowKernelMaxLength } from './spec-parts.ts';
import { sumSpec } from './variadic.ts';
import { createComposite, floatAttr, intAttr, intsAttr, type Composite, type Value } from './contrib-composite.ts';

/** ORT's default epsilon of the Skip* and Embed normalizations. */
const SKIP_EPSILON = 1e-12;

/** Output types: output and the sum as the input, the statistics float (ORT's U). */
const skipTypes = ({ inputTypes }: TypeContext): Datatype[] => {
  const input = inputTypes[0] ?? 'FP32';
  return [input, 'FP32', 'FP32', input];
};

/**
 * RMS normalization over the dims from `axis` of stage input 0, scaled by stage input 1: the
 * group kernel without centring. Stage outputs: y, then inv_std_var when `invStdOutput`.
 */
function rmsNormOperator(context: LoadContext, axis: number, epsilon: number, invStdOutput: boolean): DeviceOperator {
  const storage = floatStorage(context);
  const maxRowLength = rowKernelMaxLength(context.traits);
  return {
    kind: 'kernel',
    variants: groupNormVariants(storage, true, false),
    plan(inputs, maxPerDimension) {
      const shape = [...required(inputs, 0).shape];
      const split = normalizeAxis(axis, shape.length);
      const axes = Array.from({ length: shape.length - split }, (_, index) => split + index);
      const scaleShape = required(inputs, 1).shape;
      const normalized = product(shape.slice(split));
      if (product(scaleShape) !== normalized) throw invalidArgument(`the scale has ${product(scaleShape)} elements, the normalized dims ${normalized}`);
      const dispatch = groupNormDispatch(
        { shape, axes, scaleShape: [...shape.slice(split)], epsilon, center: false, epsilonOutside: false }, maxPerDimension, maxRowLength,
      );
      const scratch: number[] = [];
      const mean: BindingRef = { scratch: scratch.push(dispatch.groups) - 1 };
      const invStd: BindingRef = invStdOutput ? { output: 1 } : { scratch: scratch.push(dispatch.groups) - 1 };
      const statisticsShape = shape.map((dim, index) => (index >= split ? 1 : dim));
      return {
        outputShapes: invStdOutput ? [shape, statisticsShape] : [shape],
        scratch,
        dispatches: [{
          ...dispatch,
          bindings: [{ input: 0 }, { input: 1 }, { placeholder: true }, { output: 0 }, mean, invStd],
        }],
      };
    },
  };
}

export const simplifiedLayerNormSpec: OperatorSpec = {
  attributes: ['axis', 'epsilon', 'stash_type'],
  inputs: [2, 2],
  outputs: [1, 2],
  computesEveryOutput: true,
  types: ({ node, inputTypes }) => [inputTypes[0] ?? 'FP32', datatypeOfOnnxCode(intAttribute(node, 'stash_type', 1))],
  device: (context) => rmsNormOperator(context, intAttribute(context.node, 'axis', -1), floatAttribute(context.node, 'epsilon', 1e-5), Boolean(context.node.output[1])),
};

/** INVALID_ARGUMENT unless skip broadcasts to the input exactly and gamma (beta, bias) are 1-D of its last dim. */
function checkSkipShapes(op: string, inputs: ReadonlyArray<NodeInput | undefined>, vectors: readonly number[]): void {
  const shape = required(inputs, 0).shape;
  if (shape.length < 2) throw invalidArgument(`${op} input has shape [${shape}]; it must be (batch_size, sequence_length, hidden_size)`);
  const skip = required(inputs, 1).shape;
  let fits = false;
  try { fits = sameShape(broadcastShapes(shape, skip), shape); } catch { fits = false; }
  if (!fits) throw invalidArgument(`${op} skip has shape [${skip}]; it must be the input's [${shape}], (1, sequence_length, hidden_size) or (sequence_length, hidden_size)`);
  const hidden = shape[shape.length - 1];
  for (const index of vectors) {
    const vector = inputs[index]?.shape;
    if (vector && (vector.length !== 1 || vector[0] !== hidden)) throw invalidArgument(`${op} input ${index} has shape [${vector}]; it must be (hidden_size) = [${hidden}]`);
  }
}

/** The sum input + skip (+ bias) into node output `sumOutput` when named, else a temporary. */
function skipSum(program: Composite, bias: Value | undefined, sumOutput: number): Value {
  const sum = program.output(sumOutput) ?? program.temp();
  program.stage(sumSpec, 'Sum', [program.input(0), program.input(1), ...(bias ? [bias] : [])], [sum]);
  return sum;
}

export const skipLayerNormSpec: OperatorSpec = {
  attributes: ['epsilon'],
  inputs: [3, 5],
  outputs: [1, 4],
  computesEveryOutput: true,
  types: skipTypes,
  device(context) {
    const program = createComposite(context);
    program.check((inputs) => checkSkipShapes('SkipLayerNormalization', inputs, [2, 3, 4]));
    const sum = skipSum(program, program.input(4), 3);
    const epsilon = floatAttribute(context.node, 'epsilon', SKIP_EPSILON);
    program.stage(layerNormSpec, 'LayerNormalization', [sum, program.input(2), program.input(3)], [program.output(0), program.output(1), program.output(2)], {
      attributes: [intAttr('axis', -1), floatAttr('epsilon', epsilon)],
    });
    return program.build();
  },
};

export const skipSimplifiedLayerNormSpec: OperatorSpec = {
  attributes: ['epsilon'],
  inputs: [3, 4],
  outputs: [1, 4],
  computesEveryOutput: true,
  types: skipTypes,
  validate(node) {
    if (node.output[1]) throw invalidNode(node, 'output 1 (mean) is named, but RMS normalization has no mean (ORT leaves it empty)');
  },
  device(context) {
    const program = createComposite(context);
    program.check((inputs) => checkSkipShapes('SkipSimplifiedLayerNormalization', inputs, [2, 3]));
    const sum = skipSum(program, program.input(3), 3);
    const invStd = program.output(2);
    const operator = rmsNormOperator(context, -1, floatAttribute(context.node, 'epsilon', SKIP_EPSILON), Boolean(invStd));
    program.kernel(operator, [sum, program.input(2)], invStd ? [program.output(0), invStd] : [program.output(0)]);
    return program.build();
  },
};

const gatherRows = (program: Composite, table: Value | undefined, indices: Value | undefined): Value => {
  const rows = program.temp();
  program.stage(gatherSpec, 'Gather', [table, indices], [rows], { attributes: [intAttr('axis', 0)] });
  return rows;
};

export const embedLayerNormSpec: OperatorSpec = {
  attributes: ['epsilon', 'mask_index_type'],
  inputs: [7, 9],
  outputs: [1, 3],
  computesEveryOutput: true,
  types: ({ inputTypes }) => [inputTypes[2] ?? 'FP32', 'INT32', inputTypes[2] ?? 'FP32'],
  validate(node) {
    if (node.output[1] && !node.input[7]) throw unsupported(node, 'mask_index without a mask (onnxruntime gives zeros, which mask every key)');
    if (Boolean(node.input[1]) !== Boolean(node.input[4])) throw invalidNode(node, 'segment_ids and segment_embedding come together');
  },
  device(context) {
    const program = createComposite(context);
    program.check((inputs) => {
      const ids = required(inputs, 0).shape;
      if (ids.length !== 2) throw invalidArgument(`EmbedLayerNormalization input_ids has shape [${ids}]; it must be (batch_size, sequence_length)`);
      const positions = required(inputs, 3).shape;
      if (!inputs[8] && positions[0] < ids[1]) throw invalidArgument(`EmbedLayerNormalization position_embedding has ${positions[0]} rows, fewer than the ${ids[1]} positions`);
    });
    const words = gatherRows(program, program.input(2), program.input(0));
    // Without position_ids the positions are 0..S-1: the table's first S rows, a view of its start.
    const positionIds = program.input(8);
    const positions = positionIds
      ? gatherRows(program, program.input(3), positionIds)
      : program.view(program.input(3)!, (table, inputs) => [required(inputs, 0).shape[1], table[1]]);
    const segments = program.input(1) ? [gatherRows(program, program.input(4), program.input(1))] : [];
    const sum = program.output(2) ?? program.temp();
    program.stage(sumSpec, 'Sum', [words, positions, ...segments], [sum]);
    program.stage(layerNormSpec, 'LayerNormalization', [sum, program.input(5), program.input(6)], [program.output(0)], {
      attributes: [intAttr('axis', -1), floatAttr('epsilon', floatAttribute(context.node, 'epsilon', SKIP_EPSILON))],
    });
    if (program.output(1)) {
      program.stage(reduceSpec('ReduceSum'), 'ReduceSum', [program.input(7)], [program.output(1)], {
        attributes: [intsAttr('axes', [1]), intAttr('keepdims', 0)], opset: 12,
      });
    }
    return program.build();
  },
};
