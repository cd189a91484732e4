/**
 * A model past protobuf's 2 GiB, as exporters write one: model.onnx of a few kilobytes and
 * weights.bin of 2176 MiB (17 embedding tables of 128 MiB, the most one binding takes on
 * lavapipe), stored with `nexus store` and served through a real registry, router and an
 * executor process with the isolated compile check on (the worker reads the weights from the
 * staged directory itself). The weight file is sparse: zeros but for a few rows whose sums the
 * answers are checked against exactly.
 *
 * Runs only with NEXUS_LARGE_MODEL_TESTS=1: it moves 2.1 GiB through the CLI, the registry and
 * the executor's cache and holds about 7 GiB of memory and 5 GiB of disk at once, which takes
 * minutes on a 2-core machine and more memory than a small CI runner has.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GraphBuilder } from '../../services/onnx/builder.ts';
import { ModelProto, TensorProto_DataLocation } from '../../services/protocol/generated/onnx/onnx.ts';
import { startCluster, type Cluster } from './harness.ts';
import { processMemory } from './process-memory.ts';

const TABLES = 17;
const ROWS = 32768;
const WIDTH = 1024;
const TABLE_BYTES = ROWS * WIDTH * 4;
const SHARED_ROW = 5;
/** Row FIRST_OWN_ROW + t is non-zero only in table t (value t + 1). */
const FIRST_OWN_ROW = 100;

const enabled = process.env.NEXUS_LARGE_MODEL_TESTS === '1';
const GIB = 2 ** 30;

/** y = the sum over tables t of Gather(table_t, ids): model.onnx with every table in weights.bin. */
function writeLargeModel(directory: string): void {
  const graph = new GraphBuilder('embeddings_past_2gib').input('ids', 'INT64', [-1]);
  let sum = '';
  for (let table = 0; table < TABLES; table++) {
    graph.initializer(`table${table}`, 'FP32', [ROWS, WIDTH], new Float32Array(0));
    graph.node('Gather', [`table${table}`, 'ids'], [`rows${table}`], { axis: 0 }, `gather${table}`);
    if (table > 0) graph.node('Add', [sum, `rows${table}`], [`sum${table}`], {}, `add${table}`);
    sum = table === 0 ? 'rows0' : `sum${table}`;
  }
  graph.node('Identity', [sum], ['y'], {}, 'y').output('y', 'FP32', [-1, WIDTH]);
  const model = graph.toModel({ opset: 17 });
  model.graph!.initializer.forEach((tensor, table) => {
    tensor.rawData = new Uint8Array();
    tensor.dataLocation = TensorProto_DataLocation.EXTERNAL;
    tensor.externalData = [
      { key: 'location', value: 'weights.bin' }, { key: 'offset', value: String(table * TABLE_BYTES) }, { key: 'length', value: String(TABLE_BYTES) },
    ];
  });
  mkdirSync(directory, { recursive: true });
  writeFileSync(join(directory, 'model.onnx'), ModelProto.encode(model).finish());
  const file = openSync(join(directory, 'weights.bin'), 'w');
  try {
    const row = (value: number) => new Float32Array(WIDTH).fill(value);
    for (let table = 0; table < TABLES; table++) {
      writeSync(file, row(0.5), 0, WIDTH * 4, table * TABLE_BYTES + SHARED_ROW * WIDTH * 4);
      writeSync(file, row(table + 1), 0, WIDTH * 4, table * TABLE_BYTES + (FIRST_OWN_ROW + table) * WIDTH * 4);
    }
    // The last byte makes the file its full size; everything not written is a hole of zeros.
    writeSync(file, new Uint8Array(1), 0, 1, TABLES * TABLE_BYTES - 1);
  } finally {
    closeSync(file);
  }
}

describe.runIf(enabled)(`a model whose external data passes 2 GiB${enabled ? '' : ' (not run: set NEXUS_LARGE_MODEL_TESTS=1)'}`, () => {
  let cluster: Cluster;
  const saved = { ...process.env };
  beforeAll(async () => {
    // The executor process reads its budgets from the environment: weights past the default 2 GiB.
    process.env.NEXUS_WEIGHT_BUDGET_BYTES = String(3 * GIB);
    process.env.NEXUS_GPU_BUDGET_BYTES = String(6 * GIB);
    cluster = await startCluster({ executorProcesses: 1, policy: { maxBatchSize: 4, maxQueueDelayMs: 0, maxQueueSize: 16 } });
  });
  afterAll(async () => {
    process.env = saved;
    await cluster?.stop();
  });

  it('stores with nexus store, loads isolated and answers every row exactly', async () => {
    const directory = join(cluster.dataDir, 'large');
    writeLargeModel(directory);
    const started = performance.now();
    const stored = await cluster.cli(['store', directory, 'large', '--allow-dirty', '--json'], cluster.dataDir);
    expect(stored.code, stored.stderr).toBe(0);
    const storedMs = performance.now() - started;
    await cluster.waitUntilReady('large', 900_000);
    const loadedMs = performance.now() - started - storedMs;
    const ids = [SHARED_ROW, FIRST_OWN_ROW + 3, FIRST_OWN_ROW + TABLES - 1, 7];
    const response = await cluster.infer({
      modelName: 'large', inputs: [{
        name: 'ids', datatype: 'INT64', shape: [ids.length], parameters: {},
        contents: { boolContents: [], intContents: [], int64Contents: ids, uintContents: [], uint64Contents: [], fp32Contents: [], fp64Contents: [], bytesContents: [] },
      }],
    }, 600_000);
    const values = response.rawOutputContents.length > 0
      ? new Float32Array(new Uint8Array(response.rawOutputContents[0]).slice().buffer)
      : Float32Array.from(response.outputs[0].contents!.fp32Contents);
    expect(response.outputs[0].shape.map(Number)).toEqual([ids.length, WIDTH]);
    const expected = [0.5 * TABLES, 4, TABLES, 0];
    expected.forEach((value, row) => expect(new Set(values.subarray(row * WIDTH, (row + 1) * WIDTH))).toEqual(new Set([value])));
    const { peakBytes, currentBytes } = processMemory(cluster.executorProcesses[0].process.pid!);
    console.log(`model past 2 GiB (${(TABLES * TABLE_BYTES / GIB).toFixed(3)} GiB of external data): store ${(storedMs / 1000).toFixed(1)} s, `
      + `load ${(loadedMs / 1000).toFixed(1)} s; executor RSS peak ${(peakBytes / GIB).toFixed(2)} GiB, after ${(currentBytes / GIB).toFixed(2)} GiB`);
  }, 1_800_000);
});
