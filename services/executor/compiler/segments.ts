/**
 * Data-dependent plans: where a run must read values back from the GPU before it can plan the
 * rest. A step that reads on the host a value computed on the GPU (ReduceSum's axes, Slice's
 * starts, Tile's repeats, Expand's shape, Pad's pads, ConstantOfShape's shape, ...) or the shape
 * of an output the GPU decides (NonZero) starts a new segment: the run submits the segment
 * before it, reads back those (small) tensors, and only then plans the next segment for them.
 * Values that are graph inputs need no read-back: their values come with the request.
 * Pure: computed once per compiled graph from its steps.
 */
import type { ModelSignature } from '../../onnx/model.ts';
import { hostReads, type Step } from './steps.ts';

/** Steps [start, end) of the graph, submitted together, and what is read back after them. */
export interface GraphSegment {
  readonly start: number;
  readonly end: number;
  /** Device values whose bytes are read back after this segment (later steps read them on the host). */
  readonly readValues: readonly string[];
  /** Outputs whose shape the GPU decided in this segment or before: their dims are read back after it. */
  readonly readShapes: readonly string[];
}

export interface Segmentation {
  /** At least one; every segment but the last ends in a read-back. */
  readonly segments: readonly GraphSegment[];
  /** Graph inputs whose values some step reads on the host: taken from the request, they are part of the plan's key. */
  readonly hostReadInputs: readonly string[];
}

interface SegmentSource {
  readonly steps: readonly Step[];
  readonly signature: Pick<ModelSignature, 'inputs'>;
  readonly outputs: readonly string[];
}

const cache = new WeakMap<readonly Step[], Segmentation>();

/** The segments of a compiled graph's steps (cached per steps array). */
export function segmentationOf(graph: SegmentSource): Segmentation {
  let segmentation = cache.get(graph.steps);
  if (!segmentation) {
    segmentation = segmentSteps(graph);
    cache.set(graph.steps, segmentation);
  }
  return segmentation;
}

/** Which outputs of each device step have shapes the GPU decides, by value name -> producing step. */
export function deviceShapedValues(steps: readonly Step[]): Map<string, number> {
  const shaped = new Map<string, number>();
  steps.forEach((step, index) => {
    if (step.kind !== 'device') return;
    for (const output of step.operator.deviceShaped ?? []) if (step.outputs[output]) shaped.set(step.outputs[output], index);
  });
  return shaped;
}

function segmentSteps({ steps, signature, outputs }: SegmentSource): Segmentation {
  const graphInputs = new Set(signature.inputs.map((input) => input.name));
  const producedOnDevice = new Map<string, number>();
  steps.forEach((step, index) => {
    if (step.kind === 'device') for (const name of step.outputs) if (name) producedOnDevice.set(name, index);
  });
  const shaped = deviceShapedValues(steps);
  const readOnHost = new Set<string>();
  const hostReadInputs = new Set<string>();
  for (const step of steps) {
    for (const name of hostReads(step)) {
      if (producedOnDevice.has(name)) readOnHost.add(name);
      else if (graphInputs.has(name)) hostReadInputs.add(name);
    }
  }

  const segments: GraphSegment[] = [];
  const read = new Set<string>();
  const resolved = new Set<string>();
  let start = 0;
  // Everything computed before `end` that is wanted later is read back at once, so a value
  // needed only by a later step costs no read-back of its own.
  const cut = (end: number) => {
    const readValues = [...readOnHost].filter((name) => producedOnDevice.get(name)! < end && !read.has(name));
    const readShapes = [...shaped.keys()].filter((name) => shaped.get(name)! < end && !resolved.has(name));
    for (const name of readValues) read.add(name);
    for (const name of readShapes) resolved.add(name);
    segments.push({ start, end, readValues, readShapes });
    start = end;
  };
  steps.forEach((step, index) => {
    const valueMissing = hostReads(step).some((name) => producedOnDevice.has(name) && !read.has(name));
    const shapeMissing = step.inputs.some((name) => name !== undefined && shaped.has(name) && !resolved.has(name));
    if (valueMissing || shapeMissing) cut(index);
  });
  // A graph output whose shape the GPU decides is copied back at its real size.
  if (outputs.some((name) => shaped.has(name) && !resolved.has(name))) cut(steps.length);
  segments.push({ start, end: steps.length, readValues: [], readShapes: [] });
  return { segments, hostReadInputs: [...hostReadInputs] };
}
