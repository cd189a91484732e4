/**
 * AdamW (decoupled weight decay) over the flat parameter array, with global gradient-norm
 * clipping, and the learning-rate schedule: linear warm-up, then a cosine down to a floor.
 */
import type { TensorSlot } from './weights.ts';

export interface AdamWSettings {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
  /** Gradients whose global L2 norm exceeds this are scaled down to it. */
  clipNorm: number;
}

export class AdamW {
  private readonly firstMoment: Float32Array;
  private readonly secondMoment: Float32Array;
  private readonly parameters: Float32Array;
  private readonly layout: readonly TensorSlot[];
  private readonly settings: AdamWSettings;
  private step = 0;

  constructor(parameters: Float32Array, layout: readonly TensorSlot[], settings: AdamWSettings) {
    this.parameters = parameters;
    this.layout = layout;
    this.settings = settings;
    this.firstMoment = new Float32Array(parameters.length);
    this.secondMoment = new Float32Array(parameters.length);
  }

  /** One update with `gradients` (same layout); returns the gradient norm before clipping. */
  update(gradients: Float32Array, learningRate: number): number {
    const { beta1, beta2, epsilon, weightDecay, clipNorm } = this.settings;
    let squares = 0;
    for (let i = 0; i < gradients.length; i++) squares += gradients[i] * gradients[i];
    const norm = Math.sqrt(squares);
    const clip = norm > clipNorm ? clipNorm / norm : 1;
    this.step++;
    const firstCorrection = 1 - beta1 ** this.step;
    const secondCorrection = 1 - beta2 ** this.step;
    const m = this.firstMoment, v = this.secondMoment, p = this.parameters;
    for (const slot of this.layout) {
      const decay = slot.decays ? 1 - learningRate * weightDecay : 1;
      for (let i = slot.offset; i < slot.offset + slot.size; i++) {
        const g = gradients[i] * clip;
        m[i] = beta1 * m[i] + (1 - beta1) * g;
        v[i] = beta2 * v[i] + (1 - beta2) * g * g;
        const mHat = m[i] / firstCorrection;
        const vHat = v[i] / secondCorrection;
        p[i] = p[i] * decay - learningRate * mHat / (Math.sqrt(vHat) + epsilon);
      }
    }
    return norm;
  }
}

/** Learning rate at `step` (0-based) of `totalSteps`: warm-up to `peak`, cosine to `peak · floorRatio`. */
export function cosineLearningRate(step: number, totalSteps: number, warmupSteps: number, peak: number, floorRatio: number): number {
  if (step < warmupSteps) return peak * (step + 1) / warmupSteps;
  const progress = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
  const floor = peak * floorRatio;
  return floor + (peak - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
