/**
 * Assigns intermediate tensors to shared buffers: two tensors may share a buffer when their
 * lifetimes do not overlap. Pure, so it is tested without a device.
 */

/** A tensor that lives from the step that writes it to the last step that reads it (inclusive). */
export interface TensorLifetime {
  readonly byteSize: number;
  readonly firstStep: number;
  readonly lastStep: number;
}

export interface MemoryPlan {
  /** Size of each buffer to create, in bytes. */
  readonly bufferSizes: number[];
  /** For each lifetime (same order as the input), the index of its buffer. */
  readonly bufferOf: number[];
}

/**
 * Greedy first-come assignment in step order: a tensor takes the smallest free buffer that is
 * large enough, else grows the largest free one, else gets a new one. A buffer is free once the
 * last reader of its previous tensor has run, i.e. strictly before the new tensor's first step,
 * so a step never writes a buffer it reads.
 */
export function planMemory(lifetimes: readonly TensorLifetime[]): MemoryPlan {
  const bufferSizes: number[] = [];
  const bufferOf = new Array<number>(lifetimes.length);
  // When each buffer's current tenant is last read.
  const busyUntil: number[] = [];
  const order = lifetimes.map((_, index) => index).sort((left, right) => lifetimes[left].firstStep - lifetimes[right].firstStep);
  for (const index of order) {
    const { byteSize, firstStep, lastStep } = lifetimes[index];
    let best = -1;
    for (let buffer = 0; buffer < bufferSizes.length; buffer++) {
      if (busyUntil[buffer] >= firstStep) continue;
      if (best < 0) { best = buffer; continue; }
      const fits = bufferSizes[buffer] >= byteSize;
      const bestFits = bufferSizes[best] >= byteSize;
      // Prefer a buffer that fits (the tightest one); failing that, the largest to grow.
      if (fits ? !bestFits || bufferSizes[buffer] < bufferSizes[best] : !bestFits && bufferSizes[buffer] > bufferSizes[best]) {
        best = buffer;
      }
    }
    if (best < 0) {
      best = bufferSizes.length;
      bufferSizes.push(0);
      busyUntil.push(-1);
    }
    bufferSizes[best] = Math.max(bufferSizes[best], byteSize);
    busyUntil[best] = lastStep;
    bufferOf[index] = best;
  }
  return { bufferSizes, bufferOf };
}
