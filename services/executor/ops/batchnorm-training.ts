/**
 * BatchNormalization with training_mode=1 (opsets 14 and 15): normalized with the batch's own
 * per-channel mean and (population) variance, and the running statistics updated with them,
 * running = input * momentum + batch * (1 - momentum). It runs on the host in float64: the
 * statistics are two reductions over everything but the channel dim, which a training step
 * reads back anyway. The registry picks this spec for nodes with training_mode=1.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { kindOf, numberView, product } from '../tensor/index.ts';
import { floatAttribute, unsupported } from './attributes.ts';
import type { CpuContext, OperatorSpec } from './contract.ts';
import { reserve, store } from './cpu-indexing.ts';
import { requiredValue } from './parameters.ts';

/** Per-channel mean and population variance of x viewed as [N, C, plane]. */
function channelStatistics(x: ArrayLike<number>, shape: readonly number[]): { mean: Float64Array; variance: Float64Array } {
  const [batch, channels] = shape;
  const plane = product(shape.slice(2));
  const count = batch * plane;
  const mean = new Float64Array(channels);
  const variance = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    for (let n = 0; n < batch; n++) for (let i = 0, base = (n * channels + c) * plane; i < plane; i++) sum += x[base + i];
    mean[c] = sum / count;
    let squares = 0;
    for (let n = 0; n < batch; n++) {
      for (let i = 0, base = (n * channels + c) * plane; i < plane; i++) squares += (x[base + i] - mean[c]) ** 2;
    }
    variance[c] = squares / count;
  }
  return { mean, variance };
}

function cpuBatchNormTraining(context: CpuContext): HostTensor[] {
  const x = requiredValue(context, 0);
  const { shape } = x;
  if (shape.length < 2) throw invalidArgument(`BatchNormalization input has shape [${shape}]; it needs at least 2 dims (N, C, ...)`);
  const channels = shape[1];
  const [scale, bias, inputMean, inputVariance] = [1, 2, 3, 4].map((index) => {
    const tensor = requiredValue(context, index);
    if (product(tensor.shape) !== channels) throw invalidArgument(`BatchNormalization input ${index} has shape [${tensor.shape}]; it needs ${channels} values, one per channel`);
    return numberView(tensor);
  });
  const epsilon = floatAttribute(context.node, 'epsilon', 1e-5);
  const momentum = floatAttribute(context.node, 'momentum', 0.9);
  const values = numberView(x);
  const { mean, variance } = channelStatistics(values, shape);
  const plane = product(shape.slice(2));
  const y = new Float64Array(values.length);
  for (let index = 0; index < values.length; index++) {
    const c = Math.floor(index / plane) % channels;
    y[index] = ((values[index] - mean[c]) / Math.sqrt(variance[c] + epsilon)) * scale[c] + bias[c];
  }
  reserve(context, shape, context.outputTypes[0]);
  const outputs = [store(context.outputTypes[0], shape, y)];
  const running = [[inputMean, mean], [inputVariance, variance]] as const;
  running.forEach(([previous, batchValue], index) => {
    const updated = Float64Array.from(batchValue, (value, c) => previous[c] * momentum + value * (1 - momentum));
    reserve(context, [channels], context.outputTypes[1 + index]);
    outputs.push(store(context.outputTypes[1 + index], [channels], updated));
  });
  return outputs;
}

export const batchNormTrainingSpec: OperatorSpec = {
  attributes: ['epsilon', 'momentum', 'training_mode'],
  inputs: [5, 5],
  // ONNX requires all three in training mode; '' leaves one unnamed.
  outputs: [3, 3],
  computesEveryOutput: true,
  types({ node, inputTypes }) {
    const type = inputTypes[0] ?? 'FP32';
    if (kindOf(type) !== 'float') throw unsupported(node, `${type} input (floats only)`);
    // Opset 15 lets the statistics have their own float type (T2); the running ones keep it.
    return node.output.map((_, index) => (index === 0 ? type : inputTypes[3] ?? type));
  },
  cpu: cpuBatchNormTraining,
};
