/**
 * No request pays a compile: once a version is ready (ModelReady through the router, or its
 * load result on the stream), its first request at every batch size 1..max_batch_size builds no
 * new pipeline. Also measures how long loading with a full warm-up takes on this adapter.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { GraphBuilder } from '../../services/onnx/builder.ts';
import { buildResNetStyle, buildTransformerEncoder, type ExampleModel } from '../../services/examples/models/index.ts';
import { ExecutorStream, registryRecord } from '../executor/service/executor-stream.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

const MAX_BATCH_SIZE = 32;
let cluster: Cluster;
const examples: ExampleModel[] = [buildResNetStyle({ seed: 1 }), buildTransformerEncoder({ seed: 2 })];

const pipelinesBuilt = async () => (await cluster.executorStats()).pipelinesBuilt;

beforeAll(async () => {
  cluster = await startCluster({ policy: { maxBatchSize: MAX_BATCH_SIZE, maxQueueDelayMs: 0, maxQueueSize: 1024 } });
  await cluster.store('iris', trainIrisModel().onnx);
  for (const example of examples) await cluster.store(example.name.replaceAll('_', '-'), example.onnx);
  await cluster.store('resize-by-input', resizeByInput());
}, 120_000);

/** A Resize whose scales come with each request: zeros are no valid input for it. */
function resizeByInput(): Uint8Array {
  return new GraphBuilder('resize_by_input').input('x', 'FP32', [1, 1, 2, 4]).input('scales', 'FP32', [4])
    .node('Resize', ['x', '', 'scales'], ['y'], { mode: 'nearest' }).output('y', 'FP32', [-1, -1, -1, -1]).toBytes({ opset: 13 });
}

afterAll(() => cluster?.stop());

describe('warm-up', () => {
  it('makes the first request at every batch size 1..32 build no pipeline (through the router)', async () => {
    await cluster.waitUntilReady('iris');
    const before = await pipelinesBuilt();
    expect(before).toBeGreaterThan(0);
    for (let rows = 1; rows <= MAX_BATCH_SIZE; rows++) {
      const started = performance.now();
      const response = await cluster.infer({
        modelName: 'iris',
        inputs: [{ name: 'features', datatype: 'FP32', shape: [rows, 4], parameters: {}, contents: fp32Contents(new Array(rows * 4).fill(1)) }],
      });
      expect(response.outputs[0].shape).toEqual([rows, 3]);
      expect(performance.now() - started, `first request of ${rows} rows`).toBeLessThan(500);
    }
    expect(await pipelinesBuilt()).toBe(before);
  });

  it('loads a model that cannot run on zeros unwarmed, and it answers', async () => {
    await cluster.waitUntilReady('resize-by-input');
    const response = await cluster.infer({
      modelName: 'resize-by-input',
      inputs: [
        { name: 'x', datatype: 'FP32', shape: [1, 1, 2, 4], parameters: {}, contents: fp32Contents([1, 2, 3, 4, 5, 6, 7, 8]) },
        { name: 'scales', datatype: 'FP32', shape: [4], parameters: {}, contents: fp32Contents([1, 1, 1, 0.5]) },
      ],
    });
    expect(response.outputs[0].shape).toEqual([1, 1, 2, 2]);
    expect(response.outputs[0].contents?.fp32Contents).toEqual([1, 3, 5, 7]);
  });

  it.each(examples.map((example) => [example.name, example] as const))(
    'loads %s warmed up at every batch size, after which no batch size builds a pipeline', async (_name, example) => {
      const stream = new ExecutorStream(cluster.executors[0].address);
      try {
        await stream.hello;
        const record = await registryRecord(cluster.registry.address, example.name.replaceAll('_', '-'), 1);
        const started = performance.now();
        const loaded = await stream.load(record);
        const loadMs = performance.now() - started;
        expect(loaded.errorMessage).toBe('');
        console.log(`${example.name}: loaded and warmed up at batch sizes 1..${MAX_BATCH_SIZE} in ${Math.round(loadMs)} ms`);
        expect(loadMs).toBeLessThan(20_000);
        const before = await pipelinesBuilt();
        let slowestMs = 0;
        for (let rows = 1; rows <= MAX_BATCH_SIZE; rows++) {
          const shape = example.inputShape(rows);
          const data = new Uint8Array(shape.reduce((product, dim) => product * dim, 1) * 4);
          const batchStarted = performance.now();
          const result = await stream.execute({ modelName: record.modelName, version: 1, inputs: [{ name: example.input.name, datatype: 'FP32', shape, data }] });
          slowestMs = Math.max(slowestMs, performance.now() - batchStarted);
          expect(result.errorMessage).toBe('');
          expect(result.batchSize).toBe(rows);
        }
        console.log(`${example.name}: slowest first batch ${Math.round(slowestMs)} ms`);
        expect(await pipelinesBuilt()).toBe(before);
      } finally {
        stream.close();
      }
    }, 60_000);
});
