/**
 * A version's precision comes from its record (`nexus store --precision fp16`), and the executor
 * reports what each loaded version runs in and the GPU memory it takes.
 */
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { openGpu } from '../../services/executor/gpu/index.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;
let iris: TrainedIrisModel;
let irisPath: string;
let adapterHasF16: boolean;

beforeAll(async () => {
  cluster = await startCluster({ policy: { maxBatchSize: 32, maxQueueDelayMs: 5, maxQueueSize: 1024 } });
  iris = trainIrisModel();
  irisPath = join(cluster.dataDir, 'iris.onnx');
  await writeFile(irisPath, iris.onnx);
  const gpu = await openGpu();
  adapterHasF16 = gpu.hasF16;
  gpu.destroy();
});

afterAll(async () => {
  await cluster?.stop();
});

async function storeWith(name: string, extra: string[]): Promise<void> {
  const result = await cluster.cli(['store', irisPath, name, ...extra]);
  expect(result.code, result.stderr).toBe(0);
}

function randomFlowers(count: number): number[][] {
  return Array.from({ length: count }, () => [4 + Math.random() * 4, 2 + Math.random() * 2.5, 1 + Math.random() * 6, Math.random() * 2.5]);
}

async function inferRows(model: string, rows: number[][]): Promise<number[]> {
  const response = await cluster.infer({
    modelName: model,
    inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 4], parameters: {}, contents: fp32Contents(rows.flat()) }],
  });
  return response.outputs[0].contents!.fp32Contents;
}

describe('precision and memory of loaded versions', () => {
  it('runs a version stored with --precision fp16 in fp16, within fp16 tolerance, and reports its memory', async () => {
    await storeWith('iris-fast', ['--precision', 'fp16']);
    await storeWith('iris-safe', []);
    const flowers = randomFlowers(7);
    const expected = iris.predict(flowers).flat();
    const fast = await inferRows('iris-fast', flowers);
    const safe = await inferRows('iris-safe', flowers);
    // Probabilities in [0, 1]: fp16 storage keeps them within 1e-2, fp32 within 1e-4.
    fast.forEach((value, index) => expect(Math.abs(value - expected[index])).toBeLessThanOrEqual(1e-2));
    safe.forEach((value, index) => expect(Math.abs(value - expected[index])).toBeLessThanOrEqual(1e-4 + 1e-4 * Math.abs(expected[index])));

    const stats = await cluster.executorStats();
    const byName = new Map(stats.models.map((entry) => [entry.model!.modelName, entry]));
    const fastStats = byName.get('iris-fast')!;
    const safeStats = byName.get('iris-safe')!;
    expect(fastStats.model!.precision).toBe(adapterHasF16 ? 'fp16' : 'fp32');
    expect(safeStats.model!.precision).toBe('fp32');
    // The model's weights are all floats: at least its 4·16 + 16·3 matrix entries, and fp16 halves them.
    expect(safeStats.model!.weightBytes).toBeGreaterThanOrEqual((4 * 16 + 16 * 3) * 4);
    if (adapterHasF16) expect(fastStats.model!.weightBytes * 2).toBe(safeStats.model!.weightBytes);
    expect(safeStats.model!.stepCount).toBeGreaterThan(0);
    // The largest batch so far is the 7 rows (the warm-up ran 1): at least its input and output.
    expect(safeStats.peakBatchSize).toBe(7);
    expect(safeStats.peakActivationBytes).toBeGreaterThanOrEqual(7 * (4 + 3) * 4);
  });

  it('refuses a precision the executor does not know, at store time', async () => {
    const result = await cluster.cli(['store', irisPath, 'iris-odd', '--precision', 'fp8']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/--precision 'fp8' must be fp16 or fp32/);
  });

  it('fails the load of a version whose precision tag is malformed with FAILED_PRECONDITION naming it', async () => {
    await storeWith('iris-tagged', ['--tag', 'nexus.precision=fast']);
    await expect(inferRows('iris-tagged', randomFlowers(1))).rejects.toThrow(/nexus\.precision='fast'; use fp16 or fp32/);
  });
});
