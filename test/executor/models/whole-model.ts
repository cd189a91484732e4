/**
 * What every whole-model test checks: the model compiled in fp32 matches onnxruntime's CPU
 * provider on fresh random inputs at two batch sizes (the batch dim is symbolic), and the same
 * model in fp16 fast mode stays within FP16_TOLERANCE of onnxruntime's fp32 results while its
 * measured accuracy (largest absolute error, largest error over the output's RMS, top-1
 * agreement of each row) is printed for the accuracy table in docs/executor.md.
 */
import { expect } from 'vitest';
import type { GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { expectCloseFp16, expectMatchesOrt, randomTensor, runOrt } from '../numerics/ort-reference.ts';

export interface WholeModel {
  name: string;
  bytes: Uint8Array;
  input: string;
  output: string;
  /** The input's shape for a batch of `batch`. */
  inputShape(batch: number): number[];
  /** The output's shape for a batch of `batch`. */
  outputShape(batch: number): number[];
  /** Fresh inputs for a batch; default: uniform in [-1, 1) for `input`. */
  inputs?(batch: number): Map<string, HostTensor>;
}

function freshInputs(model: WholeModel, batch: number): Map<string, HostTensor> {
  return model.inputs?.(batch) ?? new Map([[model.input, randomTensor(model.inputShape(batch))]]);
}

/** fp32: every output within FP32_TOLERANCE of onnxruntime at batch 1 and 3. */
export async function expectFp32MatchesOrt(gpu: GpuContext, model: WholeModel): Promise<void> {
  const compiled = await compileOnnxModel(gpu, model.bytes, { precision: 'fp32', isolate: false });
  try {
    for (const batch of [1, 3]) {
      const outputs = await expectMatchesOrt(compiled, model.bytes, freshInputs(model, batch));
      expect(outputs.get(model.output)!.shape).toEqual(model.outputShape(batch));
    }
  } finally {
    compiled.dispose();
  }
}

export interface Fp16Accuracy {
  /** The precision the model ran in (fp32 where the adapter lacks shader-f16). */
  precision: string;
  rows: number;
  maxAbsError: number;
  /** The largest error as a fraction of the output's RMS. */
  maxErrorOverRms: number;
  /** Rows whose arg-max over the last axis equals onnxruntime's fp32 arg-max, as a fraction. */
  top1Agreement: number;
}

function argMaxAndMargin(values: Float32Array, start: number, width: number): { index: number; margin: number } {
  let best = 0;
  let second = -Infinity;
  for (let index = 1; index < width; index++) {
    const value = values[start + index];
    if (value > values[start + best]) { second = values[start + best]; best = index; } else if (value > second) second = value;
  }
  return { index: best, margin: values[start + best] - second };
}

/**
 * fp16 fast mode against onnxruntime's fp32 results over `rounds` batches of `batch` fresh
 * inputs. A row's top-1 may differ only where onnxruntime's two best scores are closer than
 * twice the largest error seen (a tie at fp16's resolution); any other disagreement fails.
 */
export async function measureFp16(gpu: GpuContext, model: WholeModel, rounds = 3, batch = 8): Promise<Fp16Accuracy> {
  const compiled = await compileOnnxModel(gpu, model.bytes, { precision: 'fp16', isolate: false });
  const accuracy: Fp16Accuracy = { precision: compiled.precision, rows: 0, maxAbsError: 0, maxErrorOverRms: 0, top1Agreement: 0 };
  let agreeing = 0;
  try {
    expect(compiled.precision).toBe(gpu.hasF16 ? 'fp16' : 'fp32');
    for (let round = 0; round < rounds; round++) {
      const feeds = freshInputs(model, batch);
      const [ours, reference] = await Promise.all([compiled.run(feeds), runOrt(model.bytes, feeds)]);
      const got = ours.outputs.get(model.output);
      const want = reference.get(model.output)!;
      accuracy.maxErrorOverRms = Math.max(accuracy.maxErrorOverRms, expectCloseFp16(model.output, got, want));
      const gotData = got!.data as Float32Array;
      const wantData = want.data as Float32Array;
      let roundMaxAbs = 0;
      for (let index = 0; index < wantData.length; index++) roundMaxAbs = Math.max(roundMaxAbs, Math.abs(gotData[index] - wantData[index]));
      accuracy.maxAbsError = Math.max(accuracy.maxAbsError, roundMaxAbs);
      const width = want.shape.at(-1)!;
      for (let start = 0; start < wantData.length; start += width) {
        accuracy.rows++;
        const expected = argMaxAndMargin(wantData, start, width);
        const actual = argMaxAndMargin(gotData, start, width);
        if (actual.index === expected.index) { agreeing++; continue; }
        expect(expected.margin, `row ${start / width} of round ${round}: top-1 ${actual.index}, onnxruntime's ${expected.index} leads by ${expected.margin}`)
          .toBeLessThanOrEqual(2 * roundMaxAbs);
      }
    }
  } finally {
    compiled.dispose();
  }
  accuracy.top1Agreement = agreeing / accuracy.rows;
  // Printed for docs/executor.md's fp16 accuracy table.
  console.log(`fp16 accuracy | ${model.name} | ${accuracy.precision} | rows ${accuracy.rows} | max abs error ${accuracy.maxAbsError.toExponential(2)} | `
    + `max error / RMS ${accuracy.maxErrorOverRms.toExponential(2)} | top-1 agreement ${(accuracy.top1Agreement * 100).toFixed(1)}%`);
  return accuracy;
}
