/**
 * The variadic element-wise operators Sum, Mean, Max and Min against onnxruntime on fresh random
 * inputs: one to six inputs, equal shapes (opset 7, before they broadcast) and numpy broadcasting
 * (opsets 8 and 13) with scalars and odd sizes, an empty tensor, INT64 / INT32 inputs (Max / Min
 * from opset 12; Sum and Mean refuse them, as ONNX defines them on floats), and the CPU implementations folding constant inputs.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import { checkModelAgainstOrt, checkOneNode, expectRefused, type InputSpec } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const OPS = ['Sum', 'Mean', 'Max', 'Min'] as const;

const inputsOf = (shapes: number[][], datatype: Datatype = 'FP32'): InputSpec[] => shapes.map((shape, index) => ({
  name: `x${index}`, shape, datatype,
  fill: datatype === 'FP32' ? undefined : (dims: number[]) => randomIntegers(dims, -50, 50, datatype as 'INT64' | 'INT32'),
}));

const SAME_SHAPES: number[][][] = [[[7]], [[3, 5], [3, 5]], [[2, 3, 7], [2, 3, 7], [2, 3, 7]]];

const BROADCAST: Array<{ shapes: number[][]; output: number[] }> = [
  { shapes: [[3, 1, 5], [4, 1]], output: [3, 4, 5] },
  { shapes: [[5], [2, 3, 5], [], [3, 1]], output: [2, 3, 5] },
  { shapes: [[1, 4, 1], [7], [3, 1, 1], [1, 1, 7], [4, 7], [1]], output: [3, 4, 7] },
  { shapes: [[0, 3], [3], [1, 3]], output: [0, 3] },
  { shapes: [[1], [259]], output: [259] },
];

for (const op of OPS) {
  describe(op, () => {
    for (const shapes of SAME_SHAPES) {
      it(`opset 7, ${shapes.length} inputs of [${shapes[0]}]`, () =>
        checkOneNode(gpu, { op, inputs: inputsOf(shapes), output: shapes[0], opset: 7 }));
    }
    for (const opset of [8, 13]) {
      for (const { shapes, output } of BROADCAST) {
        it(`opset ${opset}, broadcast ${shapes.map((shape) => `[${shape}]`).join(' ')} to [${output}]`, () =>
          checkOneNode(gpu, { op, inputs: inputsOf(shapes), output, opset, scale: 4 }));
      }
    }
    if (op === 'Sum' || op === 'Mean') {
      it('refuses INT64 inputs (ONNX defines it on floats)', () =>
        expectRefused(gpu, { op, inputs: inputsOf([[2, 3], [3]], 'INT64'), outputs: [{ name: 'y', shape: [2, 3], datatype: 'INT64' }], opset: 13 }, 'INT64 input (floats only)'));
    } else {
      for (const datatype of ['INT64', 'INT32'] as const) {
        it(`opset 13 on ${datatype}: [2, 3] [3] [2, 1]`, () => checkOneNode(gpu, {
          op, inputs: inputsOf([[2, 3], [3], [2, 1]], datatype), outputs: [{ name: 'y', shape: [2, 3], datatype }], opset: 13,
        }));
      }
    }
    it('folds constant inputs on the host', async () => {
      const graph = new GraphBuilder(`folded_${op.toLowerCase()}`).input('x', 'FP32', [2, 3]);
      for (const [index, shape] of [[2, 3], [3], [2, 1]].entries()) graph.initializer(`c${index}`, 'FP32', shape, randomTensor(shape).data);
      const bytes = graph.node(op, ['c0', 'c1', 'c2'], ['folded']).node('Add', ['x', 'folded'], ['y']).output('y', 'FP32', [2, 3]).toBytes({ opset: 13 });
      await checkModelAgainstOrt(gpu, bytes, [{ name: 'x', shape: [2, 3] }], [{ name: 'y', shape: [2, 3] }]);
    });
  });
}
