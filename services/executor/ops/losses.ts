/**
 * The loss operators: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss (with its optional
 * log_prob output). They run on the host: a loss is one gather per target element and a
 * reduction to a scalar, which the run reads back for anyway, and the host computes them in
 * float64 and rounds once, exactly as ONNX's reference defines the ignored targets and the
 * weighted mean.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { kindOf, numberView, product } from '../tensor/index.ts';
import { attributeOf, enumAttribute, intAttribute, unsupported } from './attributes.ts';
import type { CpuContext, OperatorSpec, TypeContext } from './contract.ts';
import { reserve, store } from './cpu-indexing.ts';
import { requiredValue } from './parameters.ts';

const REDUCTIONS = ['none', 'sum', 'mean'] as const;
type Reduction = (typeof REDUCTIONS)[number];

/** What both losses read from a node: the reduction and the target value that contributes nothing. */
interface LossAttributes {
  readonly reduction: Reduction;
  readonly ignoreIndex: number | undefined;
}

function lossAttributes(node: NodeProto): LossAttributes {
  const ignored = attributeOf(node, 'ignore_index');
  return {
    reduction: enumAttribute(node, 'reduction', REDUCTIONS, 'mean'),
    ignoreIndex: ignored ? intAttribute(node, 'ignore_index', 0) : undefined,
  };
}

/**
 * The loss of log-probabilities `logProb` ([N, C, d1, ...] as float64) against `target`
 * ([N, d1, ...] class indices): -logProb[n, target, d] * weight[target] per element, 0 where the
 * target is ignore_index; 'mean' divides the sum by the summed weights of the targets counted.
 */
function negativeLogLikelihood(
  logProb: ArrayLike<number>, inputShape: readonly number[], target: HostTensor, weight: ArrayLike<number> | undefined, attributes: LossAttributes,
): { shape: number[]; values: Float64Array } {
  if (inputShape.length < 2) throw invalidArgument(`the input has shape [${inputShape}]; it needs at least 2 dims (N, C, ...)`);
  const [batch, classes] = inputShape;
  const expectedTarget = [batch, ...inputShape.slice(2)];
  if (target.shape.join() !== expectedTarget.join()) {
    throw invalidArgument(`the target has shape [${target.shape}]; an input of shape [${inputShape}] needs [${expectedTarget}]`);
  }
  if (weight && weight.length !== classes) throw invalidArgument(`the weight has ${weight.length} elements; the input has ${classes} classes`);
  const inner = product(inputShape.slice(2));
  const targets = numberView(target);
  const losses = new Float64Array(batch * inner);
  let weightSum = 0;
  for (let n = 0; n < batch; n++) {
    for (let d = 0; d < inner; d++) {
      const at = n * inner + d;
      const label = targets[at];
      if (label === attributes.ignoreIndex) continue;
      if (!Number.isInteger(label) || label < 0 || label >= classes) {
        throw invalidArgument(`target ${label} at index ${at} is not a class in [0, ${classes}) nor ignore_index`);
      }
      const classWeight = weight ? weight[label] : 1;
      losses[at] = -logProb[(n * classes + label) * inner + d] * classWeight;
      weightSum += classWeight;
    }
  }
  if (attributes.reduction === 'none') return { shape: expectedTarget, values: losses };
  let sum = 0;
  for (const loss of losses) sum += loss;
  // Without weights or ignored targets the reference's mean is over every element; with them,
  // over the weights counted (0 / 0 when every target is ignored, as numpy gives).
  const counted = weight !== undefined || attributes.ignoreIndex !== undefined ? weightSum : losses.length;
  return { shape: [], values: Float64Array.of(attributes.reduction === 'sum' ? sum : sum / counted) };
}

/** LogSoftmax over axis 1 of [N, C, d1, ...], in float64. */
function logSoftmaxOverClasses(scores: ArrayLike<number>, shape: readonly number[]): Float64Array {
  const [batch, classes] = shape;
  const inner = product(shape.slice(2));
  const out = new Float64Array(scores.length);
  for (let n = 0; n < batch; n++) {
    for (let d = 0; d < inner; d++) {
      const base = n * classes * inner + d;
      let max = -Infinity;
      for (let c = 0; c < classes; c++) max = Math.max(max, scores[base + c * inner]);
      let sum = 0;
      for (let c = 0; c < classes; c++) sum += Math.exp(scores[base + c * inner] - max);
      const logSum = Math.log(sum) + max;
      for (let c = 0; c < classes; c++) out[base + c * inner] = scores[base + c * inner] - logSum;
    }
  }
  return out;
}

function floatInputTypes({ node, inputTypes }: TypeContext): void {
  const type = inputTypes[0];
  if (type && kindOf(type) !== 'float') throw unsupported(node, `${type} input (floats only)`);
  const targetType = inputTypes[1];
  if (targetType && targetType !== 'INT64' && targetType !== 'INT32') throw unsupported(node, `${targetType} target (INT32 or INT64 class indices)`);
}

/** The optional weight input as float64 values. */
const weightsOf = (context: CpuContext): ArrayLike<number> | undefined => {
  const weight = context.inputs[2]?.value;
  return weight ? numberView(weight) : undefined;
};

function cpuNegativeLogLikelihood(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const loss = negativeLogLikelihood(numberView(input), input.shape, requiredValue(context, 1), weightsOf(context), lossAttributes(context.node));
  reserve(context, loss.shape, context.outputTypes[0]);
  return [store(context.outputTypes[0], loss.shape, loss.values)];
}

function cpuSoftmaxCrossEntropy(context: CpuContext): HostTensor[] {
  const scores = requiredValue(context, 0);
  if (scores.shape.length < 2) throw invalidArgument(`the scores have shape [${scores.shape}]; they need at least 2 dims (N, C, ...)`);
  const logProb = logSoftmaxOverClasses(numberView(scores), scores.shape);
  const loss = negativeLogLikelihood(logProb, scores.shape, requiredValue(context, 1), weightsOf(context), lossAttributes(context.node));
  reserve(context, loss.shape, context.outputTypes[0]);
  const outputs = [store(context.outputTypes[0], loss.shape, loss.values)];
  if (context.node.output[1]) {
    reserve(context, scores.shape, context.outputTypes[1]);
    outputs.push(store(context.outputTypes[1], scores.shape, logProb));
  }
  return outputs;
}

const LOSS_ATTRIBUTES = ['reduction', 'ignore_index'];

export const negativeLogLikelihoodLossSpec: OperatorSpec = {
  attributes: LOSS_ATTRIBUTES,
  inputs: [2, 3],
  types(context) {
    floatInputTypes(context);
    return [context.inputTypes[0] ?? 'FP32'];
  },
  validate: (node) => { lossAttributes(node); },
  cpu: cpuNegativeLogLikelihood,
};

export const softmaxCrossEntropyLossSpec: OperatorSpec = {
  attributes: LOSS_ATTRIBUTES,
  inputs: [2, 3],
  outputs: [1, 2],
  computesEveryOutput: true,
  types(context) {
    floatInputTypes(context);
    const type = context.inputTypes[0] ?? 'FP32';
    return context.node.output.map(() => type);
  },
  validate: (node) => { lossAttributes(node); },
  cpu: cpuSoftmaxCrossEntropy,
};
