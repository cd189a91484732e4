/**
 * NonMaxSuppression (opsets 10 and 11) on the CPU: per batch and class, boxes above the score
 * threshold in descending score order, each kept unless its IoU with a box already kept exceeds
 * the threshold, up to max_output_boxes_per_class. The output's length depends on the values, so
 * with boxes or scores computed on the GPU the run reads them back first (compiler/segments.ts);
 * the selected indices are a host value. IoU is computed in f32 as onnxruntime computes it, so
 * boxes at the threshold are decided alike.
 */
import type { HostTensor } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import { fromNumbers, numberView, showShape, toNumbers } from '../tensor/index.ts';
import { intAttribute, unsupported } from './attributes.ts';
import type { CpuContext, OperatorSpec } from './contract.ts';
import { reserve } from './cpu-indexing.ts';
import { requiredValue } from './parameters.ts';

const f32 = Math.fround;

/** A box as [x_min, y_min, x_max, y_max] in f32, from its four stored values. */
function corners(boxes: ArrayLike<number>, index: number, centerPointBox: boolean): [number, number, number, number] {
  const [a, b, c, d] = [0, 1, 2, 3].map((offset) => boxes[index * 4 + offset]);
  if (centerPointBox) {
    const halfWidth = f32(c / 2);
    const halfHeight = f32(d / 2);
    return [f32(a - halfWidth), f32(b - halfHeight), f32(a + halfWidth), f32(b + halfHeight)];
  }
  // [y1, x1, y2, x2], any diagonal pair of corners.
  return [Math.min(b, d), Math.min(a, c), Math.max(b, d), Math.max(a, c)];
}

/** Whether `second` overlaps `first` by more than `threshold` (intersection over union, in f32). */
function suppresses(first: readonly number[], second: readonly number[], threshold: number): boolean {
  const width = f32(Math.min(first[2], second[2]) - Math.max(first[0], second[0]));
  const height = f32(Math.min(first[3], second[3]) - Math.max(first[1], second[1]));
  if (width <= 0 || height <= 0) return false;
  const intersection = f32(width * height);
  const area = (box: readonly number[]) => f32(f32(box[2] - box[0]) * f32(box[3] - box[1]));
  const [firstArea, secondArea] = [area(first), area(second)];
  const union = f32(f32(firstArea + secondArea) - intersection);
  if (firstArea <= 0 || secondArea <= 0 || union <= 0) return false;
  return f32(intersection / union) > threshold;
}

/** An optional scalar input's value, or `fallback` when the node omits it. */
function scalarInput(context: CpuContext, index: number, fallback: number): number {
  if (!context.node.input[index]) return fallback;
  const values = toNumbers(requiredValue(context, index));
  if (values.length !== 1) throw invalidArgument(`NonMaxSuppression input ${index} must be a scalar, got ${values.length} values`);
  return values[0];
}

function cpuNonMaxSuppression(context: CpuContext): HostTensor[] {
  const boxesTensor = requiredValue(context, 0);
  const scoresTensor = requiredValue(context, 1);
  const [batches, boxCount, four] = boxesTensor.shape;
  const [scoreBatches, classes, scoreBoxes] = scoresTensor.shape;
  if (boxesTensor.shape.length !== 3 || scoresTensor.shape.length !== 3 || four !== 4 || scoreBatches !== batches || scoreBoxes !== boxCount) {
    throw invalidArgument(`NonMaxSuppression needs boxes [batches, boxes, 4] and scores [batches, classes, boxes], got ${showShape(boxesTensor.shape)} and ${showShape(scoresTensor.shape)}`);
  }
  const maxPerClass = Math.max(0, scalarInput(context, 2, 0));
  const iouThreshold = f32(scalarInput(context, 3, 0));
  if (!(iouThreshold >= 0 && iouThreshold <= 1)) throw invalidArgument(`NonMaxSuppression iou_threshold ${iouThreshold} must be in [0, 1]`);
  const hasScoreThreshold = Boolean(context.node.input[4]);
  const scoreThreshold = f32(scalarInput(context, 4, 0));
  const centerPointBox = intAttribute(context.node, 'center_point_box', 0) === 1;
  const boxes = numberView(boxesTensor);
  const scores = numberView(scoresTensor);
  const selected: number[] = [];
  for (let batch = 0; batch < batches && maxPerClass > 0; batch++) {
    const boxCorners = Array.from({ length: boxCount }, (_, box) => corners(boxes, batch * boxCount + box, centerPointBox));
    for (let klass = 0; klass < classes; klass++) {
      const offset = (batch * classes + klass) * boxCount;
      const candidates = Array.from({ length: boxCount }, (_, box) => box)
        .filter((box) => !hasScoreThreshold || scores[offset + box] > scoreThreshold)
        .sort((a, b) => scores[offset + b] - scores[offset + a] || a - b);
      const kept: number[] = [];
      for (const box of candidates) {
        if (kept.length >= maxPerClass) break;
        if (kept.some((other) => suppresses(boxCorners[other], boxCorners[box], iouThreshold))) continue;
        kept.push(box);
        selected.push(batch, klass, box);
      }
    }
  }
  reserve(context, [selected.length / 3, 3], 'INT64');
  return [fromNumbers('INT64', [selected.length / 3, 3], selected)];
}

export const nonMaxSuppressionSpec: OperatorSpec = {
  attributes: ['center_point_box'],
  inputs: [2, 5],
  types: () => ['INT64'],
  validate(node) {
    const centerPointBox = intAttribute(node, 'center_point_box', 0);
    if (centerPointBox !== 0 && centerPointBox !== 1) throw unsupported(node, `center_point_box=${centerPointBox} (expected 0 or 1)`);
  },
  cpu: cpuNonMaxSuppression,
};
