/**
 * The trainer's backward passes against central finite differences: each GPT-2 operation on its
 * own (with a loss Σ wᵢ · outputᵢ for fixed random w), then the whole model on a tiny config,
 * every parameter of every tensor, the tied embedding included. Also the blocked product against
 * the plain triple loop, on ragged shapes.
 */
import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../services/examples/iris/train.ts';
import { Gpt2Model } from '../../services/examples/wordnet-gpt/gpt2.ts';
import {
  attentionBackward, attentionForward, crossEntropyInPlace, geluBackward, geluForward,
  layerNormBackward, layerNormForward, linearBackward, linearForward,
} from '../../services/examples/wordnet-gpt/layers.ts';
import { matmulTransposed, transpose } from '../../services/examples/wordnet-gpt/matmul.ts';
import { tensorLayout, type Gpt2Config } from '../../services/examples/wordnet-gpt/weights.ts';

const STEP = 1e-2;

function randomArray(random: () => number, length: number, scale = 1): Float32Array {
  return Float32Array.from({ length }, () => (2 * random() - 1) * scale);
}

/** Σ wᵢ · yᵢ in double precision. */
const weightedSum = (y: Float32Array, w: Float32Array) => y.reduce((sum, value, i) => sum + value * w[i], 0);

/**
 * Central differences of `loss` with respect to every element of `input`, checked against
 * `analytic`: each element within 1e-3 + 0.2% of the numeric value, and the whole vector's relative
 * error under 0.1%.
 */
function expectGradient(name: string, input: Float32Array, analytic: Float32Array, loss: () => number): void {
  const numeric = new Float64Array(input.length);
  for (let i = 0; i < input.length; i++) {
    const saved = input[i];
    input[i] = saved + STEP;
    const up = loss();
    input[i] = saved - STEP;
    const down = loss();
    input[i] = saved;
    numeric[i] = (up - down) / (2 * STEP);
  }
  let differenceSquares = 0, sizeSquares = 0;
  for (let i = 0; i < input.length; i++) {
    const difference = analytic[i] - numeric[i];
    expect(Math.abs(difference), `${name}[${i}]: analytic ${analytic[i]}, numeric ${numeric[i]}`)
      .toBeLessThan(1e-3 + 2e-3 * Math.abs(numeric[i]));
    differenceSquares += difference ** 2;
    sizeSquares += numeric[i] ** 2;
  }
  expect(Math.sqrt(differenceSquares / Math.max(sizeSquares, 1e-12)), `${name}: relative error`).toBeLessThan(1e-3);
  expect(Math.sqrt(sizeSquares), `${name}: the gradient is not zero`).toBeGreaterThan(1e-3);
}

describe('matmulTransposed', () => {
  it('equals the triple loop on ragged shapes, overwriting or accumulating', () => {
    const random = mulberry32(1);
    for (const [rows, columns, depth] of [[1, 1, 1], [5, 7, 3], [8, 4, 16], [9, 13, 33], [4, 6, 0]]) {
      const a = randomArray(random, rows * depth), b = randomArray(random, columns * depth);
      const initial = randomArray(random, rows * columns);
      for (const accumulate of [false, true]) {
        const c = Float32Array.from(initial);
        matmulTransposed(c, a, b, rows, columns, depth, accumulate);
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < columns; j++) {
            let sum = accumulate ? initial[i * columns + j] : 0;
            for (let k = 0; k < depth; k++) sum += a[i * depth + k] * b[j * depth + k];
            expect(c[i * columns + j]).toBeCloseTo(sum, 5);
          }
        }
      }
    }
  });
});

describe('GPT-2 operations: backward equals finite differences', () => {
  const random = mulberry32(2);

  it('Conv1D linear: x, W [in, out], b', () => {
    const rows = 5, inputs = 6, outputs = 7;
    const x = randomArray(random, rows * inputs), weight = randomArray(random, inputs * outputs), bias = randomArray(random, outputs);
    const w = randomArray(random, rows * outputs);
    const y = new Float32Array(rows * outputs), weightTransposed = new Float32Array(inputs * outputs);
    const loss = () => {
      transpose(weightTransposed, weight, inputs, outputs);
      linearForward(y, x, weightTransposed, bias, rows, inputs, outputs);
      return weightedSum(y, w);
    };
    const dx = new Float32Array(x.length), dWeight = new Float32Array(weight.length), dBias = new Float32Array(bias.length);
    const scratch = { inputTransposed: new Float32Array(inputs * rows), gradientTransposed: new Float32Array(outputs * rows) };
    linearBackward(dx, dWeight, dBias, w, x, weight, scratch, rows, inputs, outputs);
    expectGradient('x', x, dx, loss);
    expectGradient('W', weight, dWeight, loss);
    expectGradient('b', bias, dBias, loss);
  });

  it('LayerNorm: x, γ, β (the input gradient is added to what is there)', () => {
    const rows = 4, width = 9;
    const x = randomArray(random, rows * width, 2), gamma = randomArray(random, width), beta = randomArray(random, width);
    const w = randomArray(random, rows * width);
    const y = new Float32Array(x.length), mean = new Float32Array(rows), inverseStd = new Float32Array(rows);
    const loss = () => {
      layerNormForward(y, mean, inverseStd, x, gamma, beta, rows, width, 1e-5);
      return weightedSum(y, w);
    };
    loss();
    const existing = randomArray(random, x.length);
    const dx = Float32Array.from(existing), dGamma = new Float32Array(width), dBeta = new Float32Array(width);
    layerNormBackward(dx, dGamma, dBeta, w, x, mean, inverseStd, gamma, rows, width);
    expectGradient('x', x, dx.map((value, i) => value - existing[i]), loss);
    expectGradient('γ', gamma, dGamma, loss);
    expectGradient('β', beta, dBeta, loss);
  });

  it('gelu_new, and it is the tanh approximation', () => {
    const x = randomArray(random, 40, 4);
    const w = randomArray(random, x.length);
    const y = new Float32Array(x.length);
    const loss = () => {
      geluForward(y, x, x.length);
      return weightedSum(y, w);
    };
    loss();
    expect(y[0]).toBeCloseTo(0.5 * x[0] * (1 + Math.tanh(0.7978845608 * (x[0] + 0.044715 * x[0] ** 3))), 6);
    const dx = new Float32Array(x.length);
    geluBackward(dx, w, x, x.length);
    expectGradient('x', x, dx, loss);
  });

  it('causal multi-head attention: q, k and v through the fused projection', () => {
    const shape = { batch: 2, length: 5, heads: 2, width: 6 };
    const rows = shape.batch * shape.length;
    const qkv = randomArray(random, rows * 3 * shape.width, 1.5);
    const w = randomArray(random, rows * shape.width);
    const y = new Float32Array(rows * shape.width);
    const probabilities = new Float32Array(shape.batch * shape.heads * shape.length * shape.length);
    const loss = () => {
      attentionForward(y, probabilities, qkv, shape);
      return weightedSum(y, w);
    };
    loss();
    const dQkv = new Float32Array(qkv.length);
    attentionBackward(dQkv, w, qkv, probabilities, new Float32Array(shape.length), shape);
    expectGradient('qkv', qkv, dQkv, loss);
    // Causality: the first token's output is its own value vector, whatever comes after it.
    for (let i = 0; i < shape.width; i++) expect(y[i]).toBeCloseTo(qkv[2 * shape.width + i], 6);
  });

  it('softmax cross-entropy, with unscored (−1) targets', () => {
    const rows = 4, vocabulary = 7;
    const logits = randomArray(random, rows * vocabulary, 3);
    const targets = Int32Array.from([3, -1, 0, 6]);
    const loss = () => {
      const { lossSum, count } = crossEntropyInPlace(Float32Array.from(logits), targets, rows, vocabulary);
      expect(count).toBe(3);
      return lossSum / count;
    };
    const gradient = Float32Array.from(logits);
    crossEntropyInPlace(gradient, targets, rows, vocabulary);
    expectGradient('logits', logits, gradient, loss);
    expect(Array.from(gradient.subarray(vocabulary, 2 * vocabulary))).toEqual(new Array(vocabulary).fill(0));
  });
});

describe('GPT-2 model: backward equals finite differences', () => {
  it('for every parameter of a 2-layer model with tied embeddings', () => {
    const config: Gpt2Config = { vocab_size: 11, n_positions: 6, n_embd: 8, n_layer: 2, n_head: 2, layer_norm_epsilon: 1e-5 };
    const layout = tensorLayout(config);
    const random = mulberry32(3);
    // Large random weights (not GPT-2's 0.02) so that every gradient is well above float32 noise.
    const parameters = randomArray(random, layout.at(-1)!.offset + layout.at(-1)!.size, 0.5);
    for (const slot of layout.filter((s) => /ln_\d\.weight|ln_f\.weight/.test(s.name))) {
      for (let i = slot.offset; i < slot.offset + slot.size; i++) parameters[i] += 1;
    }
    const model = new Gpt2Model(config, parameters);
    const batch = 2, length = 5;
    const tokens = Int32Array.from({ length: batch * length }, () => Math.floor(random() * config.vocab_size));
    const targets = Int32Array.from({ length: batch * length }, (_, i) => (i === 3 ? -1 : Math.floor(random() * config.vocab_size)));
    const loss = () => {
      model.parametersChanged();
      return model.loss(tokens, targets, batch, length);
    };
    loss();
    model.gradients.fill(0);
    model.backward();
    const analytic = Float32Array.from(model.gradients);
    for (const slot of layout) {
      const range = [slot.offset, slot.offset + slot.size] as const;
      if (slot.name === 'transformer.wpe.weight') {
        // Position 5 is never used by a length-5 batch: its gradient must be exactly zero.
        expect(Array.from(analytic.subarray(slot.offset + length * config.n_embd, range[1])).every((g) => g === 0)).toBe(true);
        expectGradient(slot.name, parameters.subarray(slot.offset, slot.offset + length * config.n_embd),
          analytic.subarray(slot.offset, slot.offset + length * config.n_embd), loss);
        continue;
      }
      expectGradient(slot.name, parameters.subarray(...range), analytic.subarray(...range), loss);
    }
  });
});
