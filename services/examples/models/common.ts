/**
 * What the example models share: the shape of a built model, and reproducible random weights
 * from a small seeded generator (mulberry32), so a benchmark can rebuild the same model and a
 * test can ask for fresh ones.
 */

/** A model built in code: its bytes and what a caller needs to feed it. */
export interface ExampleModel {
  name: string;
  onnx: Uint8Array;
  /** The seed the weights came from (rebuild the same model with it). */
  seed: number;
  /** The one graph input; -1 marks the symbolic batch dim. */
  input: { name: string; shape: number[] };
  /** The one graph output; -1 marks the symbolic batch dim. */
  output: { name: string; shape: number[] };
  /** The input's shape for a batch of `batch` (the symbolic batch dim filled in). */
  inputShape(batch: number): number[];
  /** Floating-point operations of one sample (2 per multiply-add of the convolutions and products). */
  flopsPerSample: number;
}

/** Uniform values in [0, 1) from a 32-bit seed. */
export function seededUniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed = (mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed)) ^ mixed;
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296;
  };
}

/** A seed when none is given: a different model on every call. */
export const freshSeed = (): number => Math.floor(Math.random() * 2 ** 32);

export class WeightSource {
  private readonly next: () => number;

  constructor(seed: number) {
    this.next = seededUniform(seed);
  }

  /** Uniform in [-scale, scale). */
  uniform(count: number, scale: number): Float32Array {
    return Float32Array.from({ length: count }, () => (this.next() * 2 - 1) * scale);
  }

  /** Uniform in [low, high). */
  between(count: number, low: number, high: number): Float32Array {
    return Float32Array.from({ length: count }, () => low + this.next() * (high - low));
  }

  /**
   * Weights of a layer with `fanIn` inputs per output, uniform with variance gain / fanIn (2 for
   * layers followed by Relu, He initialisation; 1 otherwise), so activations keep their scale
   * through many layers and every layer matters to the output.
   */
  layer(count: number, fanIn: number, gain = 2): Float32Array {
    return this.uniform(count, Math.sqrt((3 * gain) / fanIn));
  }
}
