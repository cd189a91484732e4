/**
 * nexus_executor_gpu_busy_ratio from a running executor: requests through a real router make
 * the gauge rise above 0 (lavapipe has timestamp queries), and an executor that has shut down
 * stops reporting.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { metricsRegistry } from '../../services/telemetry/metrics.ts';
import { fp32Contents, startCluster, type Cluster } from '../integration/harness.ts';

let cluster: Cluster;
let stopped = false;
beforeAll(async () => {
  cluster = await startCluster();
  await cluster.store('iris', trainIrisModel().onnx);
  await cluster.waitUntilReady('iris');
});
afterAll(async () => {
  if (!stopped) await cluster?.stop();
});

const gauge = async () => Number(/^nexus_executor_gpu_busy_ratio (\S+)$/m.exec(await metricsRegistry.metrics())?.[1]);

describe('the GPU busy gauge of a serving executor', () => {
  it('is above 0 and at most 1 while batches run, and 0 once the executor has shut down', async () => {
    expect(cluster.executors[0].gpu.hasTimestamps).toBe(true);
    for (let request = 0; request < 20; request++) {
      await cluster.infer({ modelName: 'iris', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents([5.1, 3.5, 1.4, 0.2]) }] });
    }
    const ratio = await gauge();
    expect(ratio).toBeGreaterThan(0);
    expect(ratio).toBeLessThanOrEqual(1);
    // Batches ran, so the window holds exactly their GPU time: the executor's own record agrees.
    expect(cluster.executors[0].state.gpuBusy.ratio()).toBeGreaterThan(0);

    await cluster.stop();
    stopped = true;
    expect(await gauge()).toBe(0);
  });
});
