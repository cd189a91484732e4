/**
 * Aliases on the inference API, followed through the registry's Watch stream: requests address
 * `production` (by name, or by naming no version), a move of the alias under load by 8 clients
 * fails no request and lands traffic on the new version, the old one is unloaded once drained,
 * ModelReady/ModelMetadata follow, and a split alias divides users by weight, sticky by key.
 */
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ModelMetadataResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import {
  ExperimentsClient, GetExperimentRequest, ReportOutcomeRequest, type GetExperimentResponse,
} from '../../services/protocol/generated/nexus/router/v1/experiments.ts';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;
let experiments: ExperimentsClient;
const models = [42, 43, 44].map((seed) => trainIrisModel({ seed }));
const flower = [6.0, 2.9, 4.5, 1.5];

beforeAll(async () => {
  cluster = await startCluster();
  for (const model of models) await cluster.store('iris', model.onnx);
  const promoted = await cluster.cli(['promote', 'iris', '1', 'production', '--reason', 'first release']);
  expect(promoted.code, promoted.stderr).toBe(0);
  experiments = new ExperimentsClient(cluster.router.address, credentials.createInsecure());
});

afterAll(async () => {
  experiments?.close();
  await cluster?.stop();
});

const ask = (modelVersion: string, parameters = {}) => cluster.infer({
  modelName: 'iris', modelVersion, parameters,
  inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents(flower) }],
});
const metadata = (version: string) => new Promise<ModelMetadataResponse>((resolve, reject) =>
  cluster.inference.modelMetadata({ name: 'iris', version }, (error, response) => (error ? reject(error) : resolve(response))));
const ready = (version: string) => new Promise<boolean>((resolve, reject) =>
  cluster.inference.modelReady({ name: 'iris', version }, (error, response) => (error ? reject(error) : resolve(response.ready))));
const failureOf = (promise: Promise<unknown>) => promise.then(() => undefined, (error: ServiceError) => error);
const expectClose = (values: number[], expected: number[]) => values.forEach((value, index) => expect(value).toBeCloseTo(expected[index], 4));
const loaded = () => [...cluster.executors[0].state.models.keys()].sort();

it('sends unversioned requests to the production alias rather than the latest version, and resolves aliases by name', async () => {
  // Version 3 is the newest, but production points at 1.
  const unversioned = await ask('');
  expect(unversioned.modelVersion).toBe('1');
  expectClose(unversioned.outputs[0].contents!.fp32Contents, models[0].predict([flower])[0]);
  expect((await ask('production')).modelVersion).toBe('1');
  expect((await ask('latest')).modelVersion).toBe('3');
  expect((await ask('v3')).modelVersion).toBe('3');

  expect(await ready('production')).toBe(true);
  const described = await metadata('production');
  expect(described.properties).toMatchObject({ version: '1', alias: 'production' });
  expect(described.versions).toEqual(['1', '2', '3']);

  // A missing alias is NOT_FOUND and not ready; a malformed version is INVALID_ARGUMENT naming the field.
  expect(await ready('staging')).toBe(false);
  const missing = await failureOf(ask('staging'));
  expect(missing?.code).toBe(status.NOT_FOUND);
  expect(missing?.details).toMatch(/no alias 'staging'/);
  const malformed = await failureOf(ask('Prod!'));
  expect(malformed?.code).toBe(status.INVALID_ARGUMENT);
  expect(malformed?.details).toMatch(/model_version 'Prod!'/);
});

it('moves the production alias under load by 8 clients with no failed request, then unloads the old version', async () => {
  const failures: string[] = [];
  const seen: Array<{ version: string; values: number[] }> = [];
  let moving = true;
  const worker = async (index: number) => {
    // Half the clients name the alias, half name no version: both follow production.
    while (moving || seen.filter((answer) => answer.version === '2').length < 80) {
      try {
        const response = await ask(index % 2 === 0 ? 'production' : '');
        seen.push({ version: response.modelVersion, values: response.outputs[0].contents!.fp32Contents });
      } catch (error) {
        failures.push(`${(error as ServiceError).code} ${(error as ServiceError).details}`);
      }
      if (seen.length > 20_000) break;
    }
  };
  // Version 2 is not loaded yet: the move has to load and warm it while traffic stays on 1.
  expect(loaded()).not.toContain('iris:2');
  const load = Promise.all(Array.from({ length: 8 }, (_, index) => worker(index)));
  // ModelReady must stay true throughout: traffic only ever routes to a loaded version.
  const readiness: boolean[] = [];
  const probing = (async () => {
    while (moving || seen.filter((answer) => answer.version === '2').length < 80) {
      readiness.push(await ready('production'));
      await new Promise((wake) => setTimeout(wake, 10));
    }
  })();
  await new Promise((wake) => setTimeout(wake, 300));
  const promoted = await cluster.cli(['promote', 'iris', '2', 'production', '--reason', 'better recall']);
  expect(promoted.code, promoted.stderr).toBe(0);
  moving = false;
  await Promise.all([load, probing]);

  expect(failures).toEqual([]);
  expect(readiness.length).toBeGreaterThan(10);
  expect(readiness.every(Boolean)).toBe(true);
  const firstV2 = seen.findIndex((answer) => answer.version === '2');
  expect(firstV2).toBeGreaterThan(0);
  expect(seen.slice(0, firstV2).every((answer) => answer.version === '1')).toBe(true);
  // In-flight requests routed before the switch may still answer from 1 just after it; never later.
  expect(seen.slice(firstV2 + 100).every((answer) => answer.version === '2')).toBe(true);
  expectClose(seen.at(-1)!.values, models[1].predict([flower])[0]);

  expect((await metadata('')).properties).toMatchObject({ version: '2', alias: 'production' });
  expect(await ready('')).toBe(true);

  // Version 1 leaves the executor once drained; nothing else routes to it (latest is 3, asked for before).
  for (const started = Date.now(); loaded().includes('iris:1');) {
    expect(Date.now() - started).toBeLessThan(10_000);
    await new Promise((wake) => setTimeout(wake, 50));
  }
  expect(loaded()).toContain('iris:2');
}, 90_000);

it('splits an alias by weight, sticky by a request parameter, and reports the arms', async () => {
  const split = await cluster.cli(['promote', 'iris', '2=50,3=50', 'production', '--sticky', 'user', '--reason', 'try 3']);
  expect(split.code, split.stderr).toBe(0);
  expect(split.stdout).toMatch(/iris@production: 2 -> 2=50,3=50 \(sticky user\)/);

  // Traffic moves once both arms are warm: wait until a user lands on version 3.
  const versionOf = new Map<string, string>();
  for (const started = Date.now(); ![...versionOf.values()].includes('3');) {
    expect(Date.now() - started).toBeLessThan(20_000);
    for (let user = 0; user < 40; user++) versionOf.set(`user-${user}`, (await ask('', { user: { stringParam: `user-${user}` } })).modelVersion);
  }
  // Traffic moved during that pass: the users asked before the move were answered by the old target.
  for (let user = 0; user < 40; user++) versionOf.set(`user-${user}`, (await ask('', { user: { stringParam: `user-${user}` } })).modelVersion);
  // Same user, same arm, whichever way the alias is addressed.
  for (let round = 0; round < 2; round++) {
    for (let user = 0; user < 40; user++) {
      const response = await ask(round === 0 ? '' : 'production', { user: { stringParam: `user-${user}` } });
      expect(response.modelVersion).toBe(versionOf.get(`user-${user}`));
      await new Promise<void>((resolve, reject) => experiments.reportOutcome(ReportOutcomeRequest.fromPartial({
        // Version 3 "converts" more often: 1 for most of its users, 0 for most of version 2's.
        modelName: 'iris', alias: 'production', modelVersion: Number(response.modelVersion),
        value: response.modelVersion === '3' ? (user % 5 === 0 ? 0 : 1) : (user % 5 === 0 ? 1 : 0),
      }), (error) => (error ? reject(error) : resolve())));
    }
  }
  const arms = [...versionOf.values()];
  expect(arms.filter((version) => version === '3').length).toBeGreaterThan(8);
  expect(arms.filter((version) => version === '2').length).toBeGreaterThan(8);

  const report = await new Promise<GetExperimentResponse>((resolve, reject) =>
    experiments.getExperiment(GetExperimentRequest.fromPartial({ modelName: 'iris' }), (error, response) => (error ? reject(error) : resolve(response))));
  expect(report.alias).toBe('production');
  expect(report.stickyParameter).toBe('user');
  expect(report.arms.map((arm) => [arm.version, arm.weight])).toEqual([[2, 50], [3, 50]]);
  expect(report.arms.reduce((sum, arm) => sum + arm.outcomes, 0)).toBe(80);
  expect(report.comparisons[0].outcome!.pValue).toBeLessThan(0.001);

  const described = await metadata('production');
  expect(described.properties).toMatchObject({ version: '2', alias: 'production', split: '2=50,3=50', sticky_parameter: 'user' });
  expect(await ready('production')).toBe(true);

  // The history records the split, and a rollback restores the single version.
  const history = await cluster.cli(['history', 'iris', 'production']);
  expect(history.stdout).toMatch(/2=50,3=50 \(sticky user\)/);
  const back = await cluster.cli(['rollback', 'iris', 'production']);
  expect(back.code, back.stderr).toBe(0);
  expect(back.stdout).toMatch(/iris@production: 2=50,3=50 \(sticky user\) -> 2 \(rolled back/);
  for (const started = Date.now(); (await ask('', { user: { stringParam: 'user-any' } })).modelVersion !== '2' || (await metadata('')).properties.split;) {
    expect(Date.now() - started).toBeLessThan(20_000);
  }
  const after = await failureOf(new Promise((resolve, reject) =>
    experiments.getExperiment(GetExperimentRequest.fromPartial({ modelName: 'iris', alias: 'production' }), (error, response) => (error ? reject(error) : resolve(response)))));
  expect((after as ServiceError | undefined)?.code).toBe(status.NOT_FOUND);
}, 90_000);

it('refuses bad split targets with the field named', async () => {
  const duplicate = await cluster.cli(['promote', 'iris', '2=50,2=50', 'staging']);
  expect(duplicate.code).not.toBe(0);
  expect(duplicate.stderr).toMatch(/split\[1\]\.version 2 is listed twice/);
  const missing = await cluster.cli(['promote', 'iris', '2=50,9=50', 'staging']);
  expect(missing.code).not.toBe(0);
  expect(missing.stderr).toMatch(/no version 9/);
  const sticky = await cluster.cli(['promote', 'iris', '2', 'staging', '--sticky', 'user']);
  expect(sticky.code).not.toBe(0);
  expect(sticky.stderr).toMatch(/--sticky needs a split/);
});
