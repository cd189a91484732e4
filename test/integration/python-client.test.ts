/**
 * A client in another language: Python's grpcio, with stubs generated from our proto/ by
 * grpc_tools.protoc at test time, calls the router and gets the right numbers.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { REPO_ROOT, startCluster, type Cluster } from './harness.ts';

/** Debian's python3 has grpcio and grpcio-tools (python3-grpcio, python3-grpc-tools). */
function findPython(): string {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    if (candidate.startsWith('/') && !existsSync(candidate)) continue;
    return candidate;
  }
  return 'python3';
}

const python = findPython();
let cluster: Cluster;
let iris: TrainedIrisModel;

beforeAll(async () => {
  cluster = await startCluster();
  iris = trainIrisModel();
  await cluster.store('iris', iris.onnx);
  await cluster.waitUntilReady('iris');
});

afterAll(async () => {
  await cluster?.stop();
});

async function runClient(args: string[]): Promise<{ code: number; output: any; stderr: string }> {
  const script = join(REPO_ROOT, 'test/python/oip_client.py');
  try {
    const { stdout, stderr } = await promisify(execFile)(python, [script, '--address', cluster.router.address, ...args]);
    return { code: 0, output: JSON.parse(stdout), stderr };
  } catch (error) {
    const failed = error as { code: number; stdout: string; stderr: string };
    return { code: failed.code, output: failed.stdout ? JSON.parse(failed.stdout) : undefined, stderr: failed.stderr };
  }
}

const flowers = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]];

describe.each([['typed contents', []], ['raw contents', ['--raw']]])('a Python grpcio client using %s', (_, extra) => {
  it('reads metadata and gets the same probabilities as the model', async () => {
    const result = await runClient([
      '--model', 'iris', '--input-name', 'features', '--shape', '3,4', '--values', flowers.flat().join(','), ...extra,
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.output).toMatchObject({ live: true, ready: true, model_ready: true });
    expect(result.output.metadata.inputs).toEqual([{ name: 'features', datatype: 'FP32', shape: [-1, 4] }]);
    const [output] = result.output.outputs;
    expect(output).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [3, 3] });
    const expected = iris.predict(flowers).flat();
    output.values.forEach((value: number, index: number) => expect(value).toBeCloseTo(expected[index], 4));
    // The classes a botanist would give: setosa, virginica, versicolor.
    const argmax = (row: number[]) => row.indexOf(Math.max(...row));
    expect([0, 1, 2].map((row) => argmax(output.values.slice(row * 3, row * 3 + 3)))).toEqual([0, 2, 1]);
  });
});

it('sees a precise INVALID_ARGUMENT from Python too', async () => {
  const result = await runClient(['--model', 'iris', '--input-name', 'features', '--shape', '1,3', '--values', '1,2,3']);
  expect(result.code).toBe(3);
  expect(result.output.error.code).toBe('INVALID_ARGUMENT');
  expect(result.output.error.details).toMatch(/shape \[1,3\]/);
});
