/**
 * The paged KV cache's blocks as numbers: a pool of `totalBlocks` fixed-size blocks (each
 * `blockTokens` positions of every layer's keys and values), handed out all-or-nothing and
 * given back at once when a sequence finishes, is cancelled or is preempted. Pure: the GPU
 * buffers the numbers index live in the engine.
 */

/** Positions per KV block. */
export const BLOCK_TOKENS = 16;

export class BlockPool {
  readonly totalBlocks: number;
  readonly blockTokens: number;
  /** Free block numbers; the most recently freed is handed out first. */
  private readonly free: number[];
  private readonly inUse: Uint8Array;

  constructor(totalBlocks: number, blockTokens = BLOCK_TOKENS) {
    if (!Number.isSafeInteger(totalBlocks) || totalBlocks < 1) throw new RangeError(`a block pool needs at least one block, not ${totalBlocks}`);
    this.totalBlocks = totalBlocks;
    this.blockTokens = blockTokens;
    this.free = Array.from({ length: totalBlocks }, (_, index) => totalBlocks - 1 - index);
    this.inUse = new Uint8Array(totalBlocks);
  }

  get freeBlocks(): number {
    return this.free.length;
  }

  /** Blocks that hold `tokens` positions. */
  blocksFor(tokens: number): number {
    return Math.ceil(tokens / this.blockTokens);
  }

  /** `count` blocks, or undefined (and nothing taken) when fewer are free. */
  allocate(count: number): number[] | undefined {
    if (count > this.free.length) return undefined;
    const blocks = this.free.splice(this.free.length - count, count).reverse();
    for (const block of blocks) this.inUse[block] = 1;
    return blocks;
  }

  /** Gives blocks back; a block not in use is a bug in the caller and throws. */
  release(blocks: readonly number[]): void {
    for (const block of blocks) {
      if (this.inUse[block] !== 1) throw new Error(`KV block ${block} is released but not in use`);
      this.inUse[block] = 0;
    }
    for (let index = blocks.length - 1; index >= 0; index--) this.free.push(blocks[index]);
  }
}
