/**
 * The router's access tables: every method of every service it mounts has an entry (a missing
 * one would be refused to everyone), liveness and readiness are open, and each request that
 * names a model hands that name to the model check.
 */
import { describe, expect, it } from 'vitest';
import type { MethodAccess, ServiceAccess } from '../../../services/auth/access.ts';
import {
  EXPERIMENTS_ACCESS, ExperimentsService, GRPCInferenceServiceService, INFERENCE_ACCESS, TASKS_ACCESS, TasksService,
} from '../../../services/router/grpc/index.ts';

const mounted: Array<[string, object, ServiceAccess]> = [
  ['inference.GRPCInferenceService', GRPCInferenceServiceService, INFERENCE_ACCESS],
  ['nexus.router.v1.Tasks', TasksService, TASKS_ACCESS],
  ['nexus.router.v1.Experiments', ExperimentsService, EXPERIMENTS_ACCESS],
];

const modelOf = (access: MethodAccess, request: unknown) => ('role' in access ? access.modelOf?.(request as never) : undefined);

describe('router access tables', () => {
  it.each(mounted)('%s has an entry for every method, and none for a method it lacks', (_name, definition, access) => {
    expect(Object.keys(access).sort()).toEqual(Object.keys(definition).sort());
  });

  it('leaves only ServerLive and ServerReady open', () => {
    const open = mounted.flatMap(([name, , access]) => Object.entries(access).filter(([, entry]) => 'open' in entry).map(([method]) => `${name}/${method}`));
    expect(open).toEqual(['inference.GRPCInferenceService/serverLive', 'inference.GRPCInferenceService/serverReady']);
  });

  it('needs write to report an outcome, infer for the rest', () => {
    expect(EXPERIMENTS_ACCESS.reportOutcome).toMatchObject({ role: 'write' });
    for (const [, , access] of mounted) {
      for (const [method, entry] of Object.entries(access)) if (method !== 'reportOutcome' && 'role' in entry) expect(entry.role).toBe('infer');
    }
  });

  it('reads the model each model request names', () => {
    expect(modelOf(INFERENCE_ACCESS.modelInfer, { modelName: 'iris' })).toBe('iris');
    expect(modelOf(INFERENCE_ACCESS.modelReady, { name: 'iris', version: '' })).toBe('iris');
    expect(modelOf(INFERENCE_ACCESS.modelMetadata, { name: 'iris', version: '' })).toBe('iris');
    expect(modelOf(TASKS_ACCESS.submitTask, { request: { modelName: 'iris' } })).toBe('iris');
    expect(modelOf(TASKS_ACCESS.submitTask, {})).toBeUndefined();
    expect(modelOf(EXPERIMENTS_ACCESS.getExperiment, { modelName: 'iris', alias: 'prod' })).toBe('iris');
    expect(modelOf(EXPERIMENTS_ACCESS.reportOutcome, { modelName: 'iris' })).toBe('iris');
  });
});
