/**
 * All three services on free ports: a model stored through the CLI, then served through the
 * Open Inference Protocol, with concurrent requests batched and every answer checked.
 */
import { status, type ServiceError } from '@grpc/grpc-js';
import git from 'isomorphic-git';
import * as fs from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

const TOLERANCE = 1e-4;

let cluster: Cluster;
let iris: TrainedIrisModel;
let repo: string;
let commit: string;

beforeAll(async () => {
  // Up to 5 ms of queue delay gives concurrent requests time to meet in one batch.
  cluster = await startCluster({ policy: { maxBatchSize: 32, maxQueueDelayMs: 5, maxQueueSize: 1024 } });
  iris = trainIrisModel();
  // A project repository with one commit, as a user's would be.
  repo = join(cluster.dataDir, 'project');
  await mkdir(repo);
  await git.init({ fs, dir: repo, defaultBranch: 'main' });
  await writeFile(join(repo, 'train.py'), 'print("training")\n');
  await writeFile(join(repo, 'iris.onnx'), iris.onnx);
  await git.add({ fs, dir: repo, filepath: '.' });
  await git.addRemote({ fs, dir: repo, remote: 'origin', url: 'https://builder:s3cret@git.example.com/team/iris.git' });
  commit = await git.commit({ fs, dir: repo, message: 'Train iris', author: { name: 'Ada', email: 'ada@example.com' } });
  const stored = await cluster.cli(['store', 'iris.onnx', 'iris', '--json'], repo);
  expect(stored.code, stored.stderr).toBe(0);
  expect(JSON.parse(stored.stdout)).toMatchObject({ modelName: 'iris', version: 1, format: 'onnx' });
});

afterAll(async () => {
  await cluster?.stop();
});

function randomFlowers(count: number): number[][] {
  return Array.from({ length: count }, () => [4 + Math.random() * 4, 2 + Math.random() * 2.5, 1 + Math.random() * 6, Math.random() * 2.5]);
}

function expectClose(actual: number[], expected: number[]) {
  expect(actual).toHaveLength(expected.length);
  actual.forEach((value, index) => expect(Math.abs(value - expected[index])).toBeLessThanOrEqual(TOLERANCE + TOLERANCE * Math.abs(expected[index])));
}

describe('a stored model served end to end', () => {
  it('lists the stored version with its commit', async () => {
    const listed = await cluster.cli(['models', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const model = JSON.parse(listed.stdout).find((entry: { modelName: string }) => entry.modelName === 'iris');
    expect(model.modelName).toBe('iris');
    expect(model.signature.inputs).toEqual([{ name: 'features', datatype: 'FP32', shape: [-1, 4] }]);
    expect(model.lineage).toEqual({
      commit, branch: 'main', dirty: false, changedFiles: [], author: 'Ada <ada@example.com>', message: 'Train iris',
      remoteUrl: 'https://git.example.com/team/iris.git', // the credentials never reach the record
    });
  });

  it('refuses a dirty tree unless told, then records it and which tracked files changed', async () => {
    await writeFile(join(repo, 'train.py'), 'print("training, tweaked")\n');
    const refused = await cluster.cli(['store', 'iris.onnx', 'iris-dirty'], repo);
    expect(refused.code).toBe(6); // ExitCode.REFUSED
    expect(refused.stderr).toMatch(/train\.py/);
    const stored = await cluster.cli(['store', 'iris.onnx', 'iris-dirty', '--json', '--allow-dirty'], repo);
    expect(stored.code, stored.stderr).toBe(0);
    expect(JSON.parse(stored.stdout).lineage).toMatchObject({ commit, dirty: true, changedFiles: ['train.py'] });
  });

  it('reports metadata and readiness through the Open Inference Protocol', async () => {
    const metadata = await new Promise<any>((resolve, reject) =>
      cluster.inference.modelMetadata({ name: 'iris', version: '' }, (error, response) => (error ? reject(error) : resolve(response))));
    expect(metadata).toMatchObject({
      name: 'iris', versions: ['1'], platform: 'onnx',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }],
    });
    // The first request for a model loads it; ModelReady says false until it is compiled.
    await cluster.waitUntilReady('iris');
    const ready = await new Promise<boolean>((resolve, reject) =>
      cluster.inference.modelReady({ name: 'iris', version: '1' }, (error, response) => (error ? reject(error) : resolve(response.ready))));
    expect(ready).toBe(true);
  });

  it('batches 64 concurrent requests and answers each one correctly', async () => {
    const before = await cluster.executorStats();
    const flowers = Array.from({ length: 64 }, () => randomFlowers(1 + Math.floor(Math.random() * 3)));
    const responses = await Promise.all(flowers.map((rows, index) => cluster.infer({
      modelName: 'iris', id: `request-${index}`,
      inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 4], parameters: {}, contents: fp32Contents(rows.flat()) }],
    })));
    responses.forEach((response, index) => {
      expect(response.id).toBe(`request-${index}`);
      expect(response.modelVersion).toBe('1');
      expect(response.outputs[0].shape).toEqual([flowers[index].length, 3]);
      // How it ran: the rows of its batch include its own.
      expect(response.parameters.nexus_batch_size.int64Param).toBeGreaterThanOrEqual(flowers[index].length);
      expect(response.parameters.nexus_cache_hit.boolParam).toBe(false);
      expectClose(response.outputs[0].contents!.fp32Contents, iris.predict(flowers[index]).flat());
    });
    const after = await cluster.executorStats();
    const batchesRun = Object.entries(after.batchesBySize)
      .map(([size, count]) => ({ size: Number(size), count: count - (before.batchesBySize[Number(size)] ?? 0) }))
      .filter((entry) => entry.count > 0);
    const totalBatches = batchesRun.reduce((sum, entry) => sum + entry.count, 0);
    const totalRows = batchesRun.reduce((sum, entry) => sum + entry.size * entry.count, 0);
    expect(totalRows).toBe(flowers.reduce((sum, rows) => sum + rows.length, 0));
    // Batched: far fewer executions than requests, and some batch holds several requests' rows.
    expect(totalBatches).toBeLessThan(32);
    expect(Math.max(...batchesRun.map((entry) => entry.size))).toBeGreaterThan(3);
  });

  it('answers raw inputs with raw outputs', async () => {
    const rows = randomFlowers(5);
    const response = await cluster.infer({
      modelName: 'iris', modelVersion: '1',
      inputs: [{ name: 'features', datatype: 'FP32', shape: [5, 4], parameters: {}, contents: undefined }],
      rawInputContents: [new Uint8Array(new Float32Array(rows.flat()).buffer)],
    });
    expect(response.outputs[0].contents).toBeUndefined();
    expect(response.rawOutputContents).toHaveLength(1);
    const values = Array.from(new Float32Array(new Uint8Array(response.rawOutputContents[0]).buffer));
    expectClose(values, iris.predict(rows).flat());
  });
});

describe('bad requests get a precise status and the server keeps serving', () => {
  const flower = [5.1, 3.5, 1.4, 0.2];
  const cases: Array<[string, Parameters<Cluster['infer']>[0], number, RegExp]> = [
    ['an unknown model', { modelName: 'no-such-model', inputs: [] }, status.NOT_FOUND, /no-such-model/],
    ['an unknown version', { modelName: 'iris', modelVersion: '99', inputs: [] }, status.NOT_FOUND, /version 99/],
    ['a malformed version', { modelName: 'iris', modelVersion: 'latest!', inputs: [] }, status.INVALID_ARGUMENT, /model_version/],
    ['a wrong datatype', { modelName: 'iris', inputs: [{ name: 'features', datatype: 'FP64', shape: [1, 4], parameters: {}, contents: { ...fp32Contents([]), fp64Contents: flower } }] }, status.INVALID_ARGUMENT, /must be FP32, got FP64/],
    ['a wrong shape', { modelName: 'iris', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 3], parameters: {}, contents: fp32Contents(flower.slice(0, 3)) }] }, status.INVALID_ARGUMENT, /shape \[1,3\]/],
    ['raw contents of the wrong length', { modelName: 'iris', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: undefined }], rawInputContents: [new Uint8Array(12)] }, status.INVALID_ARGUMENT, /has 12 bytes.*needs 16/],
    ['a missing input', { modelName: 'iris', inputs: [] }, status.INVALID_ARGUMENT, /missing input 'features'/],
    ['an extra input', { modelName: 'iris', inputs: [
      { name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(flower) },
      { name: 'extra', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(flower) },
    ] }, status.INVALID_ARGUMENT, /unexpected input 'extra'/],
  ];

  it.each(cases)('%s', async (_, request, code, message) => {
    const error = await cluster.infer(request).then(() => undefined, (failure: ServiceError) => failure);
    expect(error, 'the request should have failed').toBeDefined();
    expect(error!.code).toBe(code);
    expect(error!.details).toMatch(message);
    // Still serving afterwards.
    const ok = await cluster.infer({ modelName: 'iris', inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(flower) }] });
    expect(ok.outputs[0].contents!.fp32Contents).toHaveLength(3);
  });

  it('refuses a file that is not a model, and stores nothing', async () => {
    const path = join(cluster.dataDir, 'not-a-model.onnx');
    await writeFile(path, 'this is not protobuf at all');
    const result = await cluster.cli(['store', path, 'broken']);
    expect(result.code).toBe(4); // ExitCode.INVALID_INPUT
    expect(result.stderr).toMatch(/not an ONNX model/);
    const listed = await cluster.cli(['models', '--json']);
    expect(JSON.parse(listed.stdout).map((model: { modelName: string }) => model.modelName)).not.toContain('broken');
  });
});
