/**
 * Control flow is not compiled yet: If, Loop and Scan fail the load with FAILED_PRECONDITION
 * naming the operator and the node, before anything reaches the GPU.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { expectRefused } from '../numerics/one-node.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

describe('control flow', () => {
  for (const op of ['If', 'Loop', 'Scan']) {
    it(`${op} is refused naming the node`, () => expectRefused(gpu, { op, inputs: [['x', [2]]], output: [2], opset: 17 }, ''));
  }
});
