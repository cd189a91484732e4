/**
 * Einsum against onnxruntime on fresh random inputs: matrix and batched products, attention's
 * scores, transposes, reductions, outer products, diagonals and traces, implicit outputs,
 * ellipsis broadcasting, upper-case labels, empty and zero-length contracted dims, integers, and
 * folding on the host.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, expectRefused } from '../numerics/one-node.ts';
import { randomIntegers, randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, foldedModel, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

async function einsum(equation: string, shapes: number[][], datatype: 'FP32' | 'INT64' = 'FP32'): Promise<void> {
  const graph = new GraphBuilder('einsum');
  const names = shapes.map((_, index) => `x${index}`);
  shapes.forEach((shape, index) => graph.input(names[index], datatype, shape));
  graph.node('Einsum', names, ['y'], { equation }, 'einsum_under_test').output('y', datatype, []);
  const bytes = unrankedOutputs(graph, 12);
  const fill = (shape: number[]): HostTensor => (datatype === 'INT64' ? randomIntegers(shape, -20, 20) : randomTensor(shape));
  await checkRuns(gpu, bytes, [0, 1].map(() => new Map(shapes.map((shape, index) => [names[index], fill(shape)]))));
}

describe('Einsum', () => {
  const cases: Array<[equation: string, shapes: number[][]]> = [
    ['ij,jk->ik', [[5, 7], [7, 3]]],
    ['bij,bjk->bik', [[3, 5, 4], [3, 4, 6]]],
    ['bhqd,bhkd->bhqk', [[2, 3, 5, 4], [2, 3, 7, 4]]],
    ['bhqk,bhkd->bhqd', [[2, 3, 5, 7], [2, 3, 7, 4]]],
    ['ij->ji', [[5, 7]]],
    ['ijk->kij', [[2, 3, 4]]],
    ['ij->', [[5, 7]]],
    ['ij->i', [[5, 7]]],
    ['i,j->ij', [[5], [7]]],
    ['i,i->', [[9], [9]]],
    ['ii->i', [[6, 6]]],
    ['ii', [[6, 6]]],
    ['bii->b', [[3, 4, 4]]],
    ['ij,jk', [[4, 3], [3, 5]]],
    ['ba,ca', [[4, 3], [5, 3]]],
    ['Ab,bC->AC', [[3, 4], [4, 2]]],
    ['...ij,...jk->...ik', [[2, 1, 3, 4], [1, 5, 4, 2]]],
    ['i...->...', [[3, 2, 4]]],
    ['ij,jk->ik', [[0, 3], [3, 4]]],
    ['ij,jk->ik', [[2, 0], [0, 3]]],
  ];
  it.each(cases)('%s on %j', (equation, shapes) => einsum(equation, shapes));
  it('INT64 operands', () => einsum('ij,jk->ik', [[4, 5], [5, 3]], 'INT64'));
  it('folded on the host', () =>
    checkModelAgainstOrt(gpu, foldedModel('Einsum', [randomTensor([4, 5]), randomTensor([5, 3])], [4, 3], { equation: 'ij,jk->ik' }, 12),
      [{ name: 'x', shape: [4, 3] }], [{ name: 'y', shape: [4, 3] }]));
  it('three operands are refused at load', () =>
    expectRefused(gpu, {
      op: 'Einsum', inputs: [['a', [2, 3]], ['b', [3, 4]], ['c', [4, 5]]], output: [2, 5], opset: 12, attributes: { equation: 'ij,jk,kl->il' },
    }, '3 inputs (at most 2'));
  it('an equation that is not einsum is refused at load', () =>
    expectRefused(gpu, { op: 'Einsum', inputs: [['a', [2, 3]]], output: [3, 2], opset: 12, attributes: { equation: 'i j->j-i' } }, "term 'j-i'"));
});
