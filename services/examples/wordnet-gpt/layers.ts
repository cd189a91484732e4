/**
 * GPT-2's operations, each a forward and a backward pass over caller-owned Float32Arrays (rows
 * are tokens, row-major), so a training step allocates nothing. Backward passes that produce a
 * parameter's gradient add to it (a tied weight collects from every use); those producing an
 * input's gradient say whether they add or overwrite.
 */
import { matmulTransposed, transpose } from './matmul.ts';

/**
 * Conv1D, GPT-2's linear layer: y [rows, outputs] = x [rows, inputs] · W + b, with W stored
 * [inputs, outputs] as in the checkpoint. The product runs on `weightTransposed` [outputs, inputs].
 */
export function linearForward(
  y: Float32Array, x: Float32Array, weightTransposed: Float32Array, bias: Float32Array,
  rows: number, inputs: number, outputs: number,
): void {
  matmulTransposed(y, x, weightTransposed, rows, outputs, inputs, false);
  for (let r = 0; r < rows; r++) {
    const row = r * outputs;
    for (let j = 0; j < outputs; j++) y[row + j] += bias[j];
  }
}

/** Space for the transposes `linearBackward` takes: [inputs, rows] and [outputs, rows]. */
export interface LinearScratch {
  inputTransposed: Float32Array;
  gradientTransposed: Float32Array;
}

/**
 * dx = dy · Wᵀ (overwritten; skipped when dx is null), dW += xᵀ · dy, db += Σ_rows dy.
 */
export function linearBackward(
  dx: Float32Array | null, dWeight: Float32Array, dBias: Float32Array,
  dy: Float32Array, x: Float32Array, weight: Float32Array, scratch: LinearScratch,
  rows: number, inputs: number, outputs: number,
): void {
  if (dx) matmulTransposed(dx, dy, weight, rows, inputs, outputs, false);
  transpose(scratch.inputTransposed, x, rows, inputs);
  transpose(scratch.gradientTransposed, dy, rows, outputs);
  matmulTransposed(dWeight, scratch.inputTransposed, scratch.gradientTransposed, inputs, outputs, rows, true);
  for (let j = 0; j < outputs; j++) {
    const column = scratch.gradientTransposed.subarray(j * rows, (j + 1) * rows);
    let sum = 0;
    for (let r = 0; r < rows; r++) sum += column[r];
    dBias[j] += sum;
  }
}

/** y = (x − mean) / √(var + ε) · γ + β per row; keeps each row's mean and 1/√(var + ε). */
export function layerNormForward(
  y: Float32Array, mean: Float32Array, inverseStd: Float32Array,
  x: Float32Array, gamma: Float32Array, beta: Float32Array, rows: number, width: number, epsilon: number,
): void {
  for (let r = 0; r < rows; r++) {
    const row = r * width;
    let sum = 0;
    for (let i = 0; i < width; i++) sum += x[row + i];
    const mu = sum / width;
    let squares = 0;
    for (let i = 0; i < width; i++) squares += (x[row + i] - mu) ** 2;
    const inverse = 1 / Math.sqrt(squares / width + epsilon);
    mean[r] = mu;
    inverseStd[r] = inverse;
    for (let i = 0; i < width; i++) y[row + i] = (x[row + i] - mu) * inverse * gamma[i] + beta[i];
  }
}

/**
 * dx += σ⁻¹ · (ĝ − mean(ĝ) − x̂ · mean(ĝ · x̂)) with ĝ = dy · γ and x̂ the normalized input
 * (added: the input is the residual stream, whose gradient has other terms); dγ += Σ dy · x̂, dβ += Σ dy.
 */
export function layerNormBackward(
  dx: Float32Array, dGamma: Float32Array, dBeta: Float32Array,
  dy: Float32Array, x: Float32Array, mean: Float32Array, inverseStd: Float32Array, gamma: Float32Array,
  rows: number, width: number,
): void {
  for (let r = 0; r < rows; r++) {
    const row = r * width;
    const mu = mean[r], inverse = inverseStd[r];
    let gradientMean = 0, gradientDotNormalized = 0;
    for (let i = 0; i < width; i++) {
      const normalized = (x[row + i] - mu) * inverse;
      const gradient = dy[row + i] * gamma[i];
      gradientMean += gradient;
      gradientDotNormalized += gradient * normalized;
      dGamma[i] += dy[row + i] * normalized;
      dBeta[i] += dy[row + i];
    }
    gradientMean /= width;
    gradientDotNormalized /= width;
    for (let i = 0; i < width; i++) {
      const normalized = (x[row + i] - mu) * inverse;
      dx[row + i] += inverse * (dy[row + i] * gamma[i] - gradientMean - normalized * gradientDotNormalized);
    }
  }
}

const GELU_SCALE = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

/** GPT-2's `gelu_new`: 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³))). */
export function geluForward(y: Float32Array, x: Float32Array, length: number): void {
  for (let i = 0; i < length; i++) {
    const v = x[i];
    y[i] = 0.5 * v * (1 + Math.tanh(GELU_SCALE * (v + GELU_CUBIC * v * v * v)));
  }
}

/** dx = dy · gelu′(x) (overwritten). */
export function geluBackward(dx: Float32Array, dy: Float32Array, x: Float32Array, length: number): void {
  for (let i = 0; i < length; i++) {
    const v = x[i];
    const t = Math.tanh(GELU_SCALE * (v + GELU_CUBIC * v * v * v));
    const derivative = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_SCALE * (1 + 3 * GELU_CUBIC * v * v);
    dx[i] = dy[i] * derivative;
  }
}

/** The shape of an attention call: `batch` sequences of `length` tokens, `heads` heads over `width`. */
export interface AttentionShape {
  batch: number;
  length: number;
  heads: number;
  width: number;
}

/**
 * Causal multi-head self-attention from the fused projection qkv [batch·length, 3·width] (q, k, v
 * side by side, each split into heads as GPT-2 splits them) to y [batch·length, width]. Keeps
 * the attention probabilities [batch, heads, length, length] (only s ≤ t is written) for backward.
 */
export function attentionForward(y: Float32Array, probabilities: Float32Array, qkv: Float32Array, shape: AttentionShape): void {
  const { batch, length, heads, width } = shape;
  const headWidth = width / heads;
  const stride = 3 * width;
  const scale = 1 / Math.sqrt(headWidth);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < length; t++) {
        const q = (b * length + t) * stride + h * headWidth;
        const p = ((b * heads + h) * length + t) * length;
        let max = -Infinity;
        for (let s = 0; s <= t; s++) {
          const k = (b * length + s) * stride + width + h * headWidth;
          let dot = 0;
          for (let i = 0; i < headWidth; i++) dot += qkv[q + i] * qkv[k + i];
          const score = dot * scale;
          probabilities[p + s] = score;
          if (score > max) max = score;
        }
        let sum = 0;
        for (let s = 0; s <= t; s++) sum += (probabilities[p + s] = Math.exp(probabilities[p + s] - max));
        const out = (b * length + t) * width + h * headWidth;
        for (let i = 0; i < headWidth; i++) y[out + i] = 0;
        for (let s = 0; s <= t; s++) {
          const weight = (probabilities[p + s] /= sum);
          const v = (b * length + s) * stride + 2 * width + h * headWidth;
          for (let i = 0; i < headWidth; i++) y[out + i] += weight * qkv[v + i];
        }
      }
    }
  }
}

/** dqkv (overwritten) from dy and what the forward pass kept. */
export function attentionBackward(
  dQkv: Float32Array, dy: Float32Array, qkv: Float32Array, probabilities: Float32Array,
  scores: Float32Array, shape: AttentionShape,
): void {
  const { batch, length, heads, width } = shape;
  const headWidth = width / heads;
  const stride = 3 * width;
  const scale = 1 / Math.sqrt(headWidth);
  dQkv.fill(0, 0, batch * length * stride);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      for (let t = 0; t < length; t++) {
        const out = (b * length + t) * width + h * headWidth;
        const p = ((b * heads + h) * length + t) * length;
        // scores[s] = dL/dp[s] first, then dL/dscore[s] through the softmax.
        let weighted = 0;
        for (let s = 0; s <= t; s++) {
          const v = (b * length + s) * stride + 2 * width + h * headWidth;
          let dot = 0;
          const weight = probabilities[p + s];
          for (let i = 0; i < headWidth; i++) {
            dot += dy[out + i] * qkv[v + i];
            dQkv[v + i] += weight * dy[out + i];
          }
          scores[s] = dot;
          weighted += weight * dot;
        }
        const q = (b * length + t) * stride + h * headWidth;
        for (let s = 0; s <= t; s++) {
          const dScore = probabilities[p + s] * (scores[s] - weighted) * scale;
          const k = (b * length + s) * stride + width + h * headWidth;
          for (let i = 0; i < headWidth; i++) {
            dQkv[q + i] += dScore * qkv[k + i];
            dQkv[k + i] += dScore * qkv[q + i];
          }
        }
      }
    }
  }
}

/**
 * Mean cross-entropy of the logits [rows, vocabulary] against `targets` (−1: not scored); the
 * logits are replaced by the loss's gradient with respect to them. Returns the summed loss (nats)
 * and how many rows were scored.
 */
export function crossEntropyInPlace(
  logits: Float32Array, targets: Int32Array, rows: number, vocabulary: number,
): { lossSum: number; count: number } {
  let count = 0;
  for (let r = 0; r < rows; r++) if (targets[r] >= 0) count++;
  let lossSum = 0;
  const scale = count > 0 ? 1 / count : 0;
  for (let r = 0; r < rows; r++) {
    const row = r * vocabulary;
    const target = targets[r];
    if (target < 0) {
      logits.fill(0, row, row + vocabulary);
      continue;
    }
    let max = -Infinity;
    for (let j = 0; j < vocabulary; j++) if (logits[row + j] > max) max = logits[row + j];
    let sum = 0;
    for (let j = 0; j < vocabulary; j++) sum += Math.exp(logits[row + j] - max);
    const logSum = Math.log(sum) + max;
    lossSum += logSum - logits[row + target];
    for (let j = 0; j < vocabulary; j++) logits[row + j] = Math.exp(logits[row + j] - logSum) * scale;
    logits[row + target] -= scale;
  }
  return { lossSum, count };
}
