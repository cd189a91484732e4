/** An A/B split between two stored versions: sticky assignment, outcomes, significance, CLI. */
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ExperimentsClient, GetExperimentRequest, ReportOutcomeRequest, type GetExperimentResponse } from '../../services/protocol/generated/nexus/router/v1/experiments.ts';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { DEFAULT_SERVING_CONFIG } from '../../services/router/index.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;
let experiments: ExperimentsClient;

beforeAll(async () => {
  cluster = await startCluster({
    config: {
      defaults: DEFAULT_SERVING_CONFIG,
      models: { iris: { split: { stickyParameter: 'user', arms: [{ version: 1, weight: 1 }, { version: 2, weight: 1 }] } } },
    },
  });
  for (const seed of [42, 43]) await cluster.store('iris', trainIrisModel({ seed }).onnx);
  experiments = new ExperimentsClient(cluster.router.address, credentials.createInsecure());
});

afterAll(async () => {
  experiments?.close();
  await cluster?.stop();
});

const ask = (user: string) => cluster.infer({
  modelName: 'iris', parameters: { user: { stringParam: user } },
  inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents([5.8, 2.7, 5.1, 1.9]) }],
});
const report = (value: number, version: number) => new Promise<void>((resolve, reject) =>
  experiments.reportOutcome(ReportOutcomeRequest.fromPartial({ modelName: 'iris', modelVersion: version, value }), (error) => (error ? reject(error) : resolve())));

it('keeps each user on one arm, splits users between arms, and tests the outcome difference', async () => {
  const versionOf = new Map<string, string>();
  for (let round = 0; round < 2; round++) {
    for (let user = 0; user < 60; user++) {
      const response = await ask(`user-${user}`);
      const previous = versionOf.get(`user-${user}`);
      if (previous) expect(response.modelVersion).toBe(previous);
      versionOf.set(`user-${user}`, response.modelVersion);
      // Version 2 "converts" more often: outcome 1 for most of its users, 0 for most of version 1's.
      if (round === 0) await report(response.modelVersion === '2' ? (user % 5 === 0 ? 0 : 1) : (user % 5 === 0 ? 1 : 0), Number(response.modelVersion));
    }
  }
  const arms = new Set(versionOf.values());
  expect(arms).toEqual(new Set(['1', '2']));

  const result = await new Promise<GetExperimentResponse>((resolve, reject) =>
    experiments.getExperiment(GetExperimentRequest.fromPartial({ modelName: 'iris' }), (error, response) => (error ? reject(error) : resolve(response))));
  expect(result.arms.map((arm) => arm.version)).toEqual([1, 2]);
  expect(result.arms.reduce((sum, arm) => sum + arm.requests, 0)).toBe(120);
  expect(result.arms.reduce((sum, arm) => sum + arm.outcomes, 0)).toBe(60);
  expect(result.comparisons[0].outcome!.pValue).toBeLessThan(0.001);

  const cli = await cluster.cli(['experiment', 'iris']);
  expect(cli.code, cli.stderr).toBe(0);
  expect(cli.stdout).toMatch(/1 \(control\)/);
  expect(cli.stdout).toMatch(/\(differs\)/);
});

it('refuses outcomes for a version outside the split, and experiments on models without one', async () => {
  await expect(report(1, 7)).rejects.toMatchObject({ code: status.NOT_FOUND });
  await expect(report(Number.NaN, 1)).rejects.toMatchObject({ code: status.INVALID_ARGUMENT });
  const missing = await new Promise<ServiceError>((resolve) =>
    experiments.getExperiment(GetExperimentRequest.fromPartial({ modelName: 'other' }), (error) => resolve(error!)));
  expect(missing.code).toBe(status.NOT_FOUND);
});
