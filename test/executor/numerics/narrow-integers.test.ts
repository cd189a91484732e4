/**
 * Narrow integers (UINT8, INT8, UINT16, INT16) live in i32 on the GPU; arithmetic that leaves
 * their range and Casts into them wrap before the next operator reads them, as onnxruntime's
 * integer types do. Each graph takes and gives INT32 (what the onnxruntime harness reads), with
 * the narrow type in between, on random values chosen to overflow often.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import { onnxCodeOf, type Datatype } from '../../../services/onnx/datatypes.ts';
import { expectMatchesOrt, randomIntegers } from './ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const RANGES: Record<string, [number, number]> = { UINT8: [0, 255], INT8: [-128, 127], UINT16: [0, 65535], INT16: [-32768, 32767] };

/** INT32 a, b → Cast to `narrow` → `op` → (a second `op` with b, reading the wrapped result) → Cast to INT32. */
function narrowModel(narrow: Datatype, op: string): Uint8Array {
  const to = onnxCodeOf(narrow);
  return new GraphBuilder(`narrow_${op}`).input('a', 'INT32', [3, 17]).input('b', 'INT32', [3, 17])
    .node('Cast', ['a'], ['a_narrow'], { to }).node('Cast', ['b'], ['b_narrow'], { to })
    .node(op, ['a_narrow', 'b_narrow'], ['first'], {}, 'first_op')
    .node(op, ['first', 'b_narrow'], ['second'], {}, 'second_op')
    .node('Cast', ['second'], ['y'], { to: onnxCodeOf('INT32') })
    .output('y', 'INT32', [3, 17]).toBytes({ opset: 17 });
}

describe.each(Object.keys(RANGES))('%s arithmetic wraps', (narrow) => {
  it.each(['Add', 'Sub', 'Mul'])('%s of values that overflow, read by a second one', async (op) => {
    const bytes = narrowModel(narrow as Datatype, op);
    const compiled = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      const [low, high] = RANGES[narrow];
      for (let round = 0; round < 2; round++) {
        await expectMatchesOrt(compiled, bytes, new Map([['a', randomIntegers([3, 17], low, high, 'INT32')], ['b', randomIntegers([3, 17], low, high, 'INT32')]]));
      }
    } finally {
      compiled.dispose();
    }
  });
  it('Cast from INT32 beyond its range keeps the low bits before the next operator', async () => {
    const bytes = narrowModel(narrow as Datatype, 'Add');
    const compiled = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      const wide = () => randomIntegers([3, 17], -200_000, 200_000, 'INT32');
      const outputs = await expectMatchesOrt(compiled, bytes, new Map([['a', wide()], ['b', wide()]]));
      const [low, high] = RANGES[narrow];
      for (const value of outputs.get('y')!.data as Int32Array) expect(value >= low && value <= high).toBe(true);
    } finally {
      compiled.dispose();
    }
  });
});
