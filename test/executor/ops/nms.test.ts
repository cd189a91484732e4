/**
 * NonMaxSuppression against onnxruntime on fresh random boxes and scores: both box formats,
 * with and without the optional inputs, several batches and classes, boxes and scores given in
 * the request or computed on the GPU (read back), and the selection feeding a GPU Gather.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { expectRefused } from '../numerics/one-node.ts';
import { randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** Boxes clustered in a small square so that many overlap: [y1, x1, y2, x2] corners or [x, y, w, h] centres. */
function randomBoxes(batches: number, count: number, centerPointBox: boolean): HostTensor {
  const data = new Float32Array(batches * count * 4);
  for (let box = 0; box < batches * count; box++) {
    const [x, y, w, h] = [Math.random() * 4, Math.random() * 4, 0.5 + Math.random() * 2, 0.5 + Math.random() * 2];
    data.set(centerPointBox ? [x, y, w, h] : Math.random() < 0.5 ? [y, x, y + h, x + w] : [y + h, x + w, y, x], box * 4);
  }
  return { datatype: 'FP32', shape: [batches, count, 4], data };
}

const positiveScores = (shape: number[]): HostTensor => ({ datatype: 'FP32', shape, data: (randomTensor(shape).data as Float32Array).map(Math.abs) });

interface Case {
  batches: number;
  classes: number;
  boxes: number;
  centerPointBox: 0 | 1;
  /** max_output_boxes_per_class, iou_threshold, score_threshold; absent ones are omitted inputs. */
  limits: [number?, number?, number?];
}

function nmsModel({ batches, classes, boxes, centerPointBox, limits }: Case, onGpu: boolean, opset: number): Uint8Array {
  const graph = new GraphBuilder('nms').input('b', 'FP32', [batches, boxes, 4]).input('s', 'FP32', [batches, classes, boxes]);
  const names = onGpu ? ['b_gpu', 's_gpu'] : ['b', 's'];
  if (onGpu) graph.node('Identity', ['b'], ['b_id']).node('Abs', ['b_id'], ['b_gpu']).node('Relu', ['s'], ['s_gpu']);
  const [max, iou, score] = limits;
  if (max !== undefined) graph.initializer('max', 'INT64', [1], BigInt64Array.of(BigInt(max)));
  if (iou !== undefined) graph.initializer('iou', 'FP32', [1], Float32Array.of(iou));
  if (score !== undefined) graph.initializer('score', 'FP32', [1], Float32Array.of(score));
  const optional = [max !== undefined ? 'max' : '', iou !== undefined ? 'iou' : '', score !== undefined ? 'score' : ''];
  while (optional.length > 0 && optional[optional.length - 1] === '') optional.pop();
  graph.node('NonMaxSuppression', [...names, ...optional], ['y'], { center_point_box: centerPointBox }, 'nms_under_test').output('y', 'INT64', []);
  return unrankedOutputs(graph, opset);
}

const feeds = (testCase: Case) => new Map([
  ['b', randomBoxes(testCase.batches, testCase.boxes, testCase.centerPointBox === 1)],
  ['s', positiveScores([testCase.batches, testCase.classes, testCase.boxes])],
]);

describe('NonMaxSuppression', () => {
  const cases: Case[] = [
    { batches: 1, classes: 1, boxes: 12, centerPointBox: 0, limits: [5, 0.5, 0.2] },
    { batches: 2, classes: 3, boxes: 17, centerPointBox: 0, limits: [3, 0.3] },
    { batches: 2, classes: 2, boxes: 9, centerPointBox: 1, limits: [100, 0.6, 0.5] },
    { batches: 1, classes: 2, boxes: 8, centerPointBox: 1, limits: [4] },
    { batches: 1, classes: 1, boxes: 6, centerPointBox: 0, limits: [] },
    { batches: 1, classes: 2, boxes: 0, centerPointBox: 0, limits: [3, 0.5] },
  ];
  it.each(cases)('%j, from the request and computed on the GPU', async (testCase) => {
    const runs = [0, 1].map(() => feeds(testCase));
    expect(await checkRuns(gpu, nmsModel(testCase, false, 11), runs)).toEqual([0, 0]);
    expect(await checkRuns(gpu, nmsModel(testCase, true, 10), runs)).toEqual([1, 1]);
  });
  it('the selected indices feed a GPU Gather of the boxes', async () => {
    const graph = new GraphBuilder('nms_gather').input('b', 'FP32', [1, 10, 4]).input('s', 'FP32', [1, 1, 10])
      .initializer('max', 'INT64', [1], BigInt64Array.of(4n)).initializer('iou', 'FP32', [1], Float32Array.of(0.4))
      .initializer('two', 'INT64', [1], BigInt64Array.of(2n)).initializer('one', 'INT64', [1], BigInt64Array.of(1n)).initializer('three', 'INT64', [1], BigInt64Array.of(3n))
      .node('Relu', ['s'], ['s_gpu']).node('NonMaxSuppression', ['b', 's_gpu', 'max', 'iou'], ['selected'])
      .node('Slice', ['selected', 'two', 'three', 'one'], ['column']).node('Squeeze', ['column', 'one'], ['box_ids'])
      .node('Gather', ['b', 'box_ids'], ['picked'], { axis: 1 }).node('Neg', ['picked'], ['y'])
      .output('y', 'FP32', []);
    const testCase: Case = { batches: 1, classes: 1, boxes: 10, centerPointBox: 0, limits: [] };
    await checkRuns(gpu, unrankedOutputs(graph, 13), [feeds(testCase), feeds(testCase)]);
  });
  it('center_point_box=2 is refused at load', () =>
    expectRefused(gpu, {
      op: 'NonMaxSuppression', inputs: [['b', [1, 3, 4]], ['s', [1, 1, 3]]], outputs: [{ name: 'y', shape: [0, 3], datatype: 'INT64' }],
      attributes: { center_point_box: 2 }, opset: 11,
    }, 'center_point_box=2'));
});
