/**
 * The dashboard: its static files at / (services/router/dashboard/, and uPlot from node_modules),
 * and the JSON it reads under /api/dashboard/, every call authenticated like any other:
 *
 *   GET  /api/dashboard/session                                  who the key is and what it may do
 *   GET  /api/dashboard/models                                   each model's newest version, with its lineage
 *   GET  /api/dashboard/models/{m}                               every version (git lineage, tags, signature) and alias
 *   GET  /api/dashboard/models/{m}/aliases/{a}/history           the alias's moves, newest first
 *   POST /api/dashboard/models/{m}/aliases/{a}/promote           {"target": "3" | "3=90,4=10", "sticky"?, "expected_revision"?, "reason"?}
 *   POST /api/dashboard/models/{m}/aliases/{a}/rollback          {"reason"?}
 *   GET  /api/dashboard/models/{m}/experiment?alias=             the A/B split's arms with Welch's t-test (GetExperiment)
 *   GET  /api/dashboard/traffic                                  live traffic per model, the last 60 s
 *   GET  /api/dashboard/executors                                each executor: device, slots, loaded models, weight memory
 *
 * Registry reads and alias moves go to the registry with the caller's own credential, so the
 * registry's roles, globs and audit log apply to the person at the dashboard; the router checks
 * the same roles first (reads 'infer', a promote 'write', a rollback 'admin', as the registry's
 * access table has them) and answers 401 / 403 without a round trip.
 */
import type { FastifyRequest } from 'fastify';
import { authorizeModel } from '../../auth/access.ts';
import type { Principal } from '../../auth/principal.ts';
import { roleAllows } from '../../auth/roles.ts';
import { invalidArgument, parseSplitTarget, type ModelKey } from '../../domain/index.ts';
import { RollbackAliasRequest, SetAliasRequest, type ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { EXPERIMENTS_ACCESS } from '../grpc/index.ts';
import { registerDashboardAssets } from './dashboard-assets.ts';
import type { MirroredMethod } from './http-edge.ts';
import type { DashboardParts, RouteContext } from './route-context.ts';
import { invalidParam } from './http-status.ts';

// Roles as the registry's access table has them for the calls each route makes.
const READ: MirroredMethod = { label: 'ListVersions', access: { role: 'infer' } };
const PROMOTE: MirroredMethod = { label: 'SetAlias', access: { role: 'write' } };
const ROLLBACK: MirroredMethod = { label: 'RollbackAlias', access: { role: 'admin' } };
const EXPERIMENT: MirroredMethod = { label: 'GetExperiment', access: EXPERIMENTS_ACCESS.getExperiment };

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A version record as the dashboard shows it. */
function versionView(version: ModelVersion, aliases: string[]) {
  const lineage = version.lineage;
  return {
    version: version.version, sha256: version.sha256, sizeBytes: version.sizeBytes, format: version.format,
    createdAtUnixMs: version.createdAtUnixMs, creator: version.creator, tags: version.tags, aliases,
    lineage: lineage && lineage.commit ? {
      commit: lineage.commit, branch: lineage.branch, dirty: lineage.dirty, changedFiles: lineage.changedFiles,
      message: lineage.message, author: lineage.author, remoteUrl: lineage.remoteUrl,
    } : null,
    signature: version.signature ? { inputs: version.signature.inputs, outputs: version.signature.outputs } : null,
  };
}

/** What a principal's role lets it do here (authentication off: everything). */
function sessionOf(principal: Principal) {
  const role = principal.kind === 'key' || principal.kind === 'jwt' ? principal.role : principal.kind === 'anonymous' ? 'admin' : 'infer';
  return { principal: principal.id, role, canPromote: roleAllows(role, 'write'), canRollback: roleAllows(role, 'admin') };
}

export function registerDashboardRoutes({ app, edge, parts }: RouteContext, dashboard: DashboardParts): void {
  const { catalog } = parts;
  const { registry } = dashboard;
  registerDashboardAssets(app);
  const credential = (request: FastifyRequest) => edge.authorizationOf(request);
  const modelParams = (request: FastifyRequest) => request.params as { model: string; alias?: string };

  app.get('/api/dashboard/session', async (request) => sessionOf(await edge.admit(request, READ)));

  app.get('/api/dashboard/models', async (request) => {
    const principal = await edge.admit(request, READ);
    const latest = await edge.within(request, () => registry.listModels(credential(request)));
    const visible = latest.filter((version) => {
      try {
        authorizeModel(principal, version.modelName);
        return true;
      } catch {
        return false;
      }
    });
    return {
      models: visible.map((version) => {
        const served = catalog.routeNow(version.modelName, '');
        return {
          name: version.modelName, latest: versionView(version, []),
          serving: served ? { version: served.version.version, loaded: catalog.isLoaded(served) } : null,
        };
      }),
    };
  });

  app.get('/api/dashboard/models/:model', async (request) => {
    const { model } = modelParams(request);
    await edge.admit(request, READ, model);
    const { versions, aliases } = await edge.within(request, () => registry.listVersions(model, credential(request)));
    const served = catalog.routeNow(model, '');
    return {
      name: model,
      serving: served ? { version: served.version.version, loaded: catalog.isLoaded(served) } : null,
      versions: versions.map((version) => versionView(version, aliases.filter((alias) => alias.version === version.version).map((alias) => alias.alias)))
        .sort((a, b) => b.version - a.version),
      aliases: aliases.map((alias) => ({
        alias: alias.alias, version: alias.version, revision: alias.revision, updatedBy: alias.updatedBy, updatedAtUnixMs: alias.updatedAtUnixMs,
        split: alias.split, stickyParameter: alias.stickyParameter,
      })),
    };
  });

  app.get('/api/dashboard/models/:model/aliases/:alias/history', async (request) => {
    const { model, alias } = modelParams(request);
    await edge.admit(request, READ, model);
    const moves = await edge.within(request, () => registry.aliasHistory(model, alias!, credential(request)));
    return { moves: [...moves].sort((a, b) => b.revision - a.revision) };
  });

  app.post('/api/dashboard/models/:model/aliases/:alias/promote', async (request) => {
    const { model, alias } = modelParams(request);
    const principal = await edge.admit(request, PROMOTE, model);
    const body = request.body;
    if (!isObject(body) || typeof body.target !== 'string') throw invalidParam('target', 'target is required: a version ("3") or a split ("3=90,4=10")');
    let target: ReturnType<typeof parseSplitTarget>;
    try {
      target = parseSplitTarget(body.target);
    } catch (error) {
      throw invalidParam('target', (error as Error).message);
    }
    if (body.sticky !== undefined && (typeof body.sticky !== 'string' || target.split.length === 0)) throw invalidParam('sticky', 'sticky is a parameter name, for a split target only');
    if (body.reason !== undefined && typeof body.reason !== 'string') throw invalidParam('reason', 'reason must be a string');
    const expected = body.expected_revision;
    if (expected !== undefined && (!Number.isSafeInteger(expected) || (expected as number) < 0)) throw invalidParam('expected_revision', 'expected_revision must be a non-negative integer');
    return edge.within(request, async () => {
      // Compare-and-swap on what the user saw, or else on the alias as read now (as nexus promote does).
      const expectedRevision = expected as number | undefined ?? (await registry.getAlias(model, alias!, credential(request)))?.revision ?? 0;
      const response = await registry.setAlias(SetAliasRequest.fromPartial({
        modelName: model, alias, version: target.version, split: target.split, stickyParameter: (body.sticky as string | undefined) ?? '',
        expectedRevision, reason: (body.reason as string | undefined) ?? 'from the dashboard', actor: principal.id,
      }), credential(request));
      return { alias: response.alias, move: response.move };
    });
  });

  app.post('/api/dashboard/models/:model/aliases/:alias/rollback', async (request) => {
    const { model, alias } = modelParams(request);
    const principal = await edge.admit(request, ROLLBACK, model);
    const body = request.body;
    const reason = isObject(body) && typeof body.reason === 'string' ? body.reason : 'from the dashboard';
    return edge.within(request, async () => {
      const response = await registry.rollbackAlias(RollbackAliasRequest.fromPartial({ modelName: model, alias, reason, actor: principal.id }), credential(request));
      return { alias: response.alias, move: response.move };
    });
  });

  app.get('/api/dashboard/models/:model/experiment', async (request) => {
    const { model } = modelParams(request);
    await edge.admit(request, EXPERIMENT, model);
    const query = request.query as Record<string, unknown>;
    const alias = typeof query.alias === 'string' ? query.alias : '';
    if (alias.length > 64) throw invalidArgument('alias is too long');
    return catalog.experimentFor(model, alias).report(model);
  });

  app.get('/api/dashboard/traffic', async (request) => {
    const principal = await edge.admit(request, READ);
    const models = dashboard.traffic.snapshot().filter((entry) => {
      try {
        authorizeModel(principal, entry.model);
        return true;
      } catch {
        return false;
      }
    });
    return { atUnixMs: Date.now(), models };
  });

  app.get('/api/dashboard/executors', async (request) => {
    await edge.admit(request, READ);
    return {
      executors: dashboard.executors().map((link) => {
        const loaded = [...link.loaded].map((key) => {
          const model = link.loadedModel(key as ModelKey);
          return {
            key, modelName: model?.modelName ?? key, version: model?.version ?? 0, precision: model?.precision ?? '',
            weightBytes: model?.weightBytes ?? 0, task: model?.task ?? '', kvCapacityTokens: model?.kvCapacityTokens ?? 0,
          };
        });
        return {
          address: link.address, ready: link.ready, circuitOpen: link.circuitOpen,
          executorId: link.hello?.executorId ?? '', device: link.hello?.device ?? '',
          slots: link.hello?.maxInflightBatches ?? 0, inflightBatches: link.inflight, runningSequences: link.runningSequences ?? 0,
          weightBytes: loaded.reduce((sum, model) => sum + model.weightBytes, 0), loaded,
        };
      }),
    };
  });
}
