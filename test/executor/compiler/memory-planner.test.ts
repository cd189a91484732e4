/**
 * The memory planner without a GPU: buffers are shared only between tensors whose lifetimes do
 * not overlap, the peak is what the shared buffers and the inputs take, and graph inputs and
 * outputs are never overwritten early.
 */
import { describe, expect, it } from 'vitest';
import { compileGraph, planLayout, planMemory, type TensorLifetime } from '../../../services/executor/compiler/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';

const LIMITS = { maxComputeWorkgroupsPerDimension: 65535, maxStorageBufferBindingSize: 1 << 27 };

/** Every pair of tensors given one buffer: the earlier one's last reader runs before the later one is written. */
function expectNoOverlap(lifetimes: readonly TensorLifetime[], bufferOf: readonly number[]): void {
  for (let left = 0; left < lifetimes.length; left++) {
    for (let right = left + 1; right < lifetimes.length; right++) {
      if (bufferOf[left] !== bufferOf[right]) continue;
      const [first, second] = lifetimes[left].firstStep <= lifetimes[right].firstStep ? [lifetimes[left], lifetimes[right]] : [lifetimes[right], lifetimes[left]];
      expect(first.lastStep, `tensors ${left} and ${right} share buffer ${bufferOf[left]}`).toBeLessThan(second.firstStep);
    }
  }
}

describe('planMemory', () => {
  it('reuses a buffer once its tensor has been read for the last time, never while it is read', () => {
    // A chain: each tensor is read by the next step only.
    const chain = [0, 1, 2, 3].map((step) => ({ byteSize: 64, firstStep: step, lastStep: step + 1 }));
    const plan = planMemory(chain);
    expect(plan.bufferOf).toEqual([0, 1, 0, 1]);
    expect(plan.bufferSizes).toEqual([64, 64]);
  });

  it('gives a tensor the tightest free buffer that fits, and grows the largest free one otherwise', () => {
    const plan = planMemory([
      { byteSize: 400, firstStep: 0, lastStep: 1 },
      { byteSize: 100, firstStep: 0, lastStep: 1 },
      { byteSize: 90, firstStep: 2, lastStep: 3 },
      { byteSize: 800, firstStep: 2, lastStep: 3 },
    ]);
    expect(plan.bufferOf).toEqual([0, 1, 1, 0]);
    expect(plan.bufferSizes).toEqual([800, 100]);
  });

  it('never shares between overlapping lifetimes, on random graphs', () => {
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 50; round++) {
      const lifetimes = Array.from({ length: 20 }, () => {
        const firstStep = Math.floor(random() * 15);
        return { byteSize: 16 * (1 + Math.floor(random() * 10)), firstStep, lastStep: firstStep + Math.floor(random() * 5) };
      });
      const plan = planMemory(lifetimes);
      expectNoOverlap(lifetimes, plan.bufferOf);
      lifetimes.forEach((lifetime, index) => expect(plan.bufferSizes[plan.bufferOf[index]]).toBeGreaterThanOrEqual(lifetime.byteSize));
    }
  });
});

describe('plan layout of a compiled graph', () => {
  // x -> Relu 'early' (a graph output, written first) and x -> Sigmoid -> Tanh -> Relu -> Neg -> y.
  const builder = new GraphBuilder('chain')
    .input('x', 'FP32', ['N', 256])
    .node('Relu', ['x'], ['early'], {}, 'early')
    .node('Sigmoid', ['x'], ['b'], {}, 'b')
    .node('Tanh', ['b'], ['c'], {}, 'c')
    .node('Relu', ['c'], ['d'], {}, 'd')
    .node('Neg', ['d'], ['y'], {}, 'y')
    .output('early', 'FP32', ['N', 256])
    .output('y', 'FP32', ['N', 256]);
  const graph = compileGraph(builder.toModel(), { precision: 'fp32', traits: { gemmAlgorithm: 'tiled' } });
  const layout = planLayout(graph, new Map([['x', [4, 256]]]), LIMITS);
  const tensorBytes = 4 * 256 * 4;
  const bufferOfValue = (name: string) => {
    const where = layout.storage.get(name);
    if (where?.kind !== 'intermediate') throw new Error(`'${name}' is not an intermediate`);
    return layout.bufferOf[where.id];
  };

  it('keeps the graph input in its own buffer, outside the shared ones', () => {
    expect(layout.storage.get('x')).toEqual({ kind: 'input', name: 'x' });
  });

  it('keeps an early graph output alive to the end: no later tensor takes its buffer', () => {
    const early = bufferOfValue('early');
    for (const name of ['b', 'c', 'd', 'y']) expect(bufferOfValue(name), name).not.toBe(early);
  });

  it('shares buffers only between tensors that are not alive at once', () => {
    // b is read by Tanh while c is written: they must differ; d is written after b's last read.
    expect(bufferOfValue('c')).not.toBe(bufferOfValue('b'));
    expect(bufferOfValue('d')).toBe(bufferOfValue('b'));
    expect(bufferOfValue('y')).toBe(bufferOfValue('c'));
    expect(layout.bufferSizes).toEqual([tensorBytes, tensorBytes, tensorBytes]);
  });

  it('reports the peak as shared buffers plus inputs, and what one buffer per tensor would take', () => {
    expect(layout.peakBytes).toBe(3 * tensorBytes + tensorBytes);
    expect(layout.unsharedBytes).toBe(5 * tensorBytes);
    expect(layout.kernels.map(({ step }) => step.label)).toEqual(["Relu 'early'", "Sigmoid 'b'", "Tanh 'c'", "Relu 'd'", "Neg 'y'"]);
  });

  it('refuses a tensor larger than one binding may cover, naming the step and the limit', () => {
    expect(() => planLayout(graph, new Map([['x', [4, 256]]]), { ...LIMITS, maxStorageBufferBindingSize: 1024 }))
      .toThrow(/Relu 'early': output 'early' \[4, 256\] needs 4096 bytes, more than this device binds \(maxStorageBufferBindingSize 1024\)/);
  });
});
