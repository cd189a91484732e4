/** The linear order the compiler runs nodes in: producers first, the file's order among ready nodes. */
import { describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { topologicalOrder } from '../../../services/executor/compiler/index.ts';
import type { NodeProto } from '../../../services/onnx/model.ts';

const node = (name: string, input: string[], output: string[]): NodeProto => ({
  name, opType: 'Relu', domain: '', docString: '', input, output, attribute: [],
});

describe('topological order', () => {
  it('puts every node after the producers of its inputs, and keeps the file order among ready ones', () => {
    // Listed out of order: d reads b and c, b and c read a; e is independent.
    const nodes = [node('d', ['b', 'c'], ['y']), node('b', ['a'], ['b']), node('e', ['x'], ['z']), node('a', ['x'], ['a']), node('c', ['a'], ['c'])];
    expect(topologicalOrder(nodes, ['x']).map((entry) => entry.name)).toEqual(['e', 'a', 'b', 'c', 'd']);
  });

  it('leaves a graph already in order as it is', () => {
    const nodes = [node('a', ['x'], ['a']), node('b', ['a'], ['b']), node('c', ['b', 'x'], ['c'])];
    expect(topologicalOrder(nodes, ['x'])).toEqual(nodes);
  });

  it('ignores omitted optional inputs and inputs already available', () => {
    const nodes = [node('b', ['a', ''], ['b']), node('a', ['x', 'w'], ['a'])];
    expect(topologicalOrder(nodes, ['x', 'w']).map((entry) => entry.name)).toEqual(['a', 'b']);
  });

  it('refuses an input nothing produces, naming it', () => {
    expect(() => topologicalOrder([node('a', ['missing'], ['a'])], ['x'])).toThrow(/input 'missing' is neither a graph input/);
  });

  it('refuses a cycle, naming the nodes on it', () => {
    const nodes = [node('a', ['x', 'c'], ['a']), node('b', ['a'], ['b']), node('c', ['b'], ['c'])];
    try {
      topologicalOrder(nodes, ['x']);
      throw new Error('expected a cycle error');
    } catch (error) {
      expect((error as NexusError).code).toBe(ErrorCode.FAILED_PRECONDITION);
      expect((error as Error).message).toMatch(/cycle through node\(s\) 'a', 'b', 'c'/);
    }
  });
});

describe('topological order of large graphs', () => {
  /** A chain of `count` nodes listed last to first, so every node waits for the next one listed. */
  const reversedChain = (count: number) => Array.from({ length: count }, (_, index) => node(`n${index}`, [index === 0 ? 'x' : `v${index - 1}`], [`v${index}`])).reverse();
  /** A ladder: each node reads its predecessor and the graph input, listed in order. */
  const fanIn = (count: number) => Array.from({ length: count }, (_, index) => node(`n${index}`, [index === 0 ? 'x' : `v${index - 1}`, 'x'], [`v${index}`]));
  const timed = (nodes: NodeProto[]) => {
    const started = performance.now();
    const order = topologicalOrder(nodes, ['x']);
    return { order, ms: performance.now() - started };
  };

  it('orders a 40 000-node chain in linear time', () => {
    timed(reversedChain(2_000)); // warm up the JIT
    const small = timed(reversedChain(20_000));
    const large = timed(reversedChain(40_000));
    expect(large.order.map((entry) => entry.name).slice(0, 3)).toEqual(['n0', 'n1', 'n2']);
    expect(large.order).toHaveLength(40_000);
    // Quadratic work (shift, includes, spreads) took seconds here; linear work takes milliseconds.
    expect(large.ms).toBeLessThan(1_000);
    expect(large.ms / Math.max(small.ms, 1)).toBeLessThan(4);
  });

  it('orders 40 000 nodes reading one shared input quickly', () => {
    const { order, ms } = timed(fanIn(40_000));
    expect(order).toHaveLength(40_000);
    expect(ms).toBeLessThan(1_000);
  });
});
