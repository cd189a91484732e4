/**
 * Triton's classification extension through a real router: the iris model stored with
 * `nexus store --labels`, an output requested with parameter classification K answered as
 * BYTES "score:index:label", top K per row; `nexus infer --classes` prints the labels.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IRIS_LABELS, trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;
let iris: TrainedIrisModel;
let output: string;

beforeAll(async () => {
  cluster = await startCluster();
  iris = trainIrisModel();
  await writeFile(join(cluster.dataDir, 'iris.onnx'), iris.onnx);
  await writeFile(join(cluster.dataDir, 'labels.txt'), `${IRIS_LABELS.join('\n')}\n`);
  const stored = await cluster.cli(['store', 'iris.onnx', 'iris', '--labels', 'labels.txt', '--json', '--allow-dirty'], cluster.dataDir);
  expect(stored.code, stored.stderr).toBe(0);
  await cluster.waitUntilReady('iris');
  const probe = await cluster.infer({ modelName: 'iris', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents([5, 3, 1.5, 0.2]) }] });
  output = probe.outputs[0].name;
});
afterAll(() => cluster?.stop());

const flowers = [[5.1, 3.5, 1.4, 0.2], [6.0, 2.7, 5.1, 1.6], [6.9, 3.1, 5.4, 2.1], [5.7, 2.8, 4.1, 1.3]];

describe('classification extension', () => {
  it('answers the top 2 classes per row as score:index:label, best first', async () => {
    const response = await cluster.infer({
      modelName: 'iris',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [flowers.length, 4], parameters: {}, contents: fp32Contents(flowers.flat()) }],
      outputs: [{ name: output, parameters: { classification: { int64Param: 2 } } }],
    });
    const tensor = response.outputs[0];
    expect(tensor.datatype).toBe('BYTES');
    expect(tensor.shape.map(Number)).toEqual([flowers.length, 2]);
    const strings = tensor.contents!.bytesContents.map((bytes) => new TextDecoder().decode(bytes));
    const expected = iris.predict(flowers);
    flowers.forEach((_, row) => {
      const ranked = expected[row].map((score, index) => ({ score, index })).sort((a, b) => b.score - a.score).slice(0, 2);
      ranked.forEach(({ score, index }, rank) => {
        const [gotScore, gotIndex, gotLabel] = strings[row * 2 + rank].split(':');
        expect(Number(gotIndex)).toBe(index);
        expect(gotLabel).toBe(IRIS_LABELS[index]);
        expect(Math.abs(Number(gotScore) - score)).toBeLessThan(1e-4);
      });
    });
  });

  it('refuses a classification count below 1 as INVALID_ARGUMENT naming the output', async () => {
    const error = await cluster.infer({
      modelName: 'iris',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(flowers[0]) }],
      outputs: [{ name: output, parameters: { classification: { int64Param: 0 } } }],
    }).then(() => undefined, (thrown: Error & { code?: number }) => thrown);
    expect(error?.code).toBe(3);
    expect(error?.message).toContain(`outputs['${output}'].parameters.classification`);
  });

  it('nexus infer --classes prints the label names', async () => {
    const result = await cluster.cli(['infer', 'iris', '--data', JSON.stringify([flowers[0]]), '--classes', '3'], cluster.dataDir);
    expect(result.code, result.stderr).toBe(0);
    for (const label of IRIS_LABELS) expect(result.stdout).toContain(label);
  });
});
