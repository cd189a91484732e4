/**
 * The discrete Fourier transform kernel (shaders/signal/dft.wgsl) behind DFT and STFT: one
 * invocation per complex output value, a direct sum over the transform's terms.
 */
import type { StorageType } from '../tensor/index.ts';
import { linearGrid, reciprocal, UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const WORKGROUP_SIZE = 64;

/**
 * A batch of transforms over a signal viewed as [outer, length, inner, components] (components
 * 1: real, 2: complex), output [outer, frames, bins, inner, 2]. Frame f of transform (o, i) reads
 * samples f * frameStep + n for n < terms (the rest of dftLength counts as zeros), times
 * window[n] when there is a window.
 */
export interface DftProblem {
  readonly outer: number;
  readonly inner: number;
  readonly length: number;
  readonly components: 1 | 2;
  readonly frames: number;
  readonly frameStep: number;
  readonly bins: number;
  readonly terms: number;
  readonly dftLength: number;
  readonly inverse: boolean;
}

/** Bindings: signal, window (a placeholder without one), twiddle table (dftTwiddles), output, params. */
export function dftVariant(type: StorageType, hasWindow: boolean): KernelVariant {
  return {
    shader: 'signal/dft.wgsl',
    preludes: ['common/index.wgsl'],
    types: { T: type },
    constants: { HAS_WINDOW: Number(hasWindow), WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/**
 * The kernel's twiddle table for a transform of `dftLength`: cos and sin of 2 pi j / N for each
 * j < N, computed in float64 and rounded once to f32, as raw words.
 */
export function dftTwiddles(dftLength: number): Uint32Array {
  const values = new Float32Array(2 * dftLength);
  for (let j = 0; j < dftLength; j++) {
    const angle = (2 * Math.PI * j) / dftLength;
    values[2 * j] = Math.cos(angle);
    values[2 * j + 1] = Math.sin(angle);
  }
  return new Uint32Array(values.buffer);
}

export function dftDispatch(problem: DftProblem, maxPerDimension: number): Dispatch {
  const count = problem.outer * problem.frames * problem.bins * problem.inner;
  return {
    workgroups: count === 0 ? [0, 1, 1] : linearGrid(Math.ceil(count / WORKGROUP_SIZE), maxPerDimension),
    uniforms: new UniformWriter(64)
      .u32(count).u32(problem.inner).u32(problem.bins).u32(problem.frames)
      .u32(problem.length).u32(problem.components).u32(problem.frameStep).u32(problem.terms)
      .u32(problem.dftLength).f32(problem.inverse ? 1 : -1).f32(problem.inverse ? 1 / problem.dftLength : 1).u32(0)
      .f32(reciprocal(problem.inner)).f32(reciprocal(problem.bins)).f32(reciprocal(problem.frames)).u32(0)
      .finish(),
  };
}
