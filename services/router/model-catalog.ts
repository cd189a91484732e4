/**
 * Which model versions the router serves, and where each request goes.
 *
 * A request names a model and a model_version: a number, `latest`, an alias (`production`,
 * `staging`), or nothing (the router config's split if there is one, else the `production`
 * alias if it exists, else `latest`). Numbers are served as asked. `latest` and aliases are
 * routes: their targets (one version, or a split by weight) come from the registry, read once per
 * model and then kept current by the registry's Watch stream (registry-watch.ts); nothing polls.
 *
 * When a route's target changes, its new versions are loaded and warmed on the executors while
 * traffic stays on the old target; traffic moves once every new version is ready; versions no
 * route needs any more are unloaded after their queues drain. ModelReady and ModelMetadata read
 * the same state, so they describe where traffic goes at that moment.
 */
import { Metadata } from '@grpc/grpc-js';
import {
  GetVersionRequest, ListAliasesRequest, type Alias, type ModelVersion, type RegistryClient, type WatchResponse,
} from '../protocol/generated/nexus/registry/v1/registry.ts';
import type { InferParameter } from '../protocol/generated/inference/grpc_service.ts';
import type { ModelSignature, TensorSpec } from '../onnx/index.ts';
import { isDatatype } from '../onnx/index.ts';
import { ErrorCode, NexusError, invalidArgument, notFound } from '../domain/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { injectIntoMetadata } from '../telemetry/tracing.ts';
import type { BatchingPolicy } from './batch-queue.ts';
import { ExecutorPool, versionKey } from './executor-pool.ts';
import { armFor, Experiment } from './experiment.ts';
import {
  applyAlias, applyAliasMove, applyVersion, DEFAULT_ALIAS, defaultRoute, desiredTarget, emptyView, isSplit, parseSelector, routeKeyOf,
  sameTarget, targetOfAlias, versionsOf, versionsToRetire, type ModelView, type RouteKey, type Target,
} from './lifecycle.ts';
import { ModelBatcher } from './model-batcher.ts';
import { isBatchable } from './request-validation.ts';
import { ResponseCache } from './response-cache.ts';
import { DEFAULT_SERVING_CONFIG, servingConfigFor, type RouterConfig } from './router-config.ts';

export interface ServedModel {
  version: ModelVersion;
  signature: ModelSignature;
  policy: BatchingPolicy;
  /** Priority of requests that name none (1 high … 3 low). */
  defaultPriority: number;
  batcher: ModelBatcher;
  /** Present when the model's config enables response caching. */
  cache: ResponseCache | undefined;
  /** Settles when the version is loaded on at least one executor. */
  loaded: Promise<void>;
  /** True once `loaded` has resolved, so a request can queue without awaiting it. */
  ready: boolean;
  /** Requests holding this model between routing and being queued (see hold/release). */
  holders: number;
  /** Set once unloaded; a request still holding it asks the catalog for a fresh one. */
  retired: boolean;
}

/** Where one request goes. */
export interface Routed {
  model: ServedModel;
  /** The split the request went through, when it went through one. */
  experiment?: Experiment;
}

/** What a model name and model_version resolve to now, for ModelReady and ModelMetadata. */
export interface Described {
  /** Every version traffic goes to (one, or each arm of a split), the control first. */
  models: ServedModel[];
  /** The alias followed, if any. */
  alias?: string;
  /** The split followed, if any. */
  split?: Target;
}

export interface CatalogOptions {
  /** Serving settings per model (see router-config.ts). Default: built-in defaults only. */
  config?: RouterConfig;
  /** Told when a model becomes servable (loaded and warmed) or stops being so. */
  onModelHealth?: (modelName: string, serving: boolean) => void;
  logger?: Logger;
  /** A route no request used for this long is dropped and its versions unloaded. Default 10 minutes. */
  idleRouteMs?: number;
  /** Delays between attempts to load a route's new target, in ms. Default 1 s, 2 s, 4 s, 8 s, 16 s. */
  loadRetryDelaysMs?: number[];
}

function signatureOf(version: ModelVersion): ModelSignature {
  const toSpec = (spec: { name: string; datatype: string; shape: number[] }): TensorSpec => {
    if (!isDatatype(spec.datatype)) throw new NexusError(ErrorCode.INTERNAL, `version record has unknown datatype ${spec.datatype}`);
    return { name: spec.name, datatype: spec.datatype, shape: spec.shape };
  };
  return { inputs: (version.signature?.inputs ?? []).map(toSpec), outputs: (version.signature?.outputs ?? []).map(toSpec) };
}

/** A route (`latest` or an alias) of one model: where its traffic goes, and where it is moving. */
interface Route {
  key: RouteKey;
  /** Where traffic goes now; every version in it has been asked to load. */
  active: Target | undefined;
  /** The target being loaded and warmed; traffic moves to it once all of it is ready. */
  pending: Target | undefined;
  /** Results per arm while the active target is a split. */
  experiment: Experiment | undefined;
  lastUsedMs: number;
}

/** One model the router follows. */
interface ModelEntry {
  name: string;
  view: ModelView;
  /** Settles once the model's state was read from the registry the first time. */
  synced: Promise<void>;
  /** True once `synced` has resolved. */
  ready: boolean;
  routes: Map<RouteKey, Route>;
}

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));
const splitText = (target: Target) => target.arms.map((arm) => `${arm.version}=${arm.weight}`).join(',');

export class ModelCatalog {
  private readonly registry: RegistryClient;
  private readonly pool: ExecutorPool;
  private readonly config: RouterConfig;
  private readonly served = new Map<string, ServedModel>();
  /** Version records by "name:version"; versions are immutable, so they never go stale. */
  private readonly records = new Map<string, ModelVersion>();
  private readonly models = new Map<string, ModelEntry>();
  private readonly onModelHealth: (modelName: string, serving: boolean) => void;
  private readonly logger: Logger | undefined;
  private readonly idleRouteMs: number;
  private readonly loadRetryDelaysMs: number[];
  private readonly sweeper: NodeJS.Timeout;
  private accepting = true;
  /** Splits from the router config, by model. */
  private readonly configExperiments = new Map<string, Experiment>();
  /** Requests between arriving and being answered, wherever they are (resolving, queued, running). */
  private activeRequests = 0;

  constructor(registry: RegistryClient, pool: ExecutorPool, options: CatalogOptions = {}) {
    this.registry = registry;
    this.pool = pool;
    this.config = options.config ?? { defaults: DEFAULT_SERVING_CONFIG, models: {} };
    this.onModelHealth = options.onModelHealth ?? (() => {});
    this.logger = options.logger;
    this.idleRouteMs = options.idleRouteMs ?? 600_000;
    this.loadRetryDelaysMs = options.loadRetryDelaysMs ?? [1000, 2000, 4000, 8000, 16_000];
    pool.onCapacity(() => {
      for (const model of this.served.values()) model.batcher.pump();
    });
    this.sweeper = setInterval(() => this.dropIdleRoutes(), Math.max(1000, Math.min(60_000, this.idleRouteMs / 2)));
    this.sweeper.unref();
  }

  // ---------------------------------------------------------------- registry reads

  private registryError(error: unknown): NexusError {
    const coded = NexusError.from(error);
    if (coded.code === ErrorCode.INVALID_ARGUMENT || coded.code === ErrorCode.NOT_FOUND) return coded;
    return new NexusError(ErrorCode.UNAVAILABLE, `the registry could not be reached: ${coded.message}`);
  }

  private getVersion(modelName: string, version: number): Promise<ModelVersion> {
    return new Promise((resolve, reject) => {
      this.registry.getVersion(GetVersionRequest.fromPartial({ modelName, version }), injectIntoMetadata(new Metadata()),
        { deadline: Date.now() + 10_000 }, (error, response) => {
          if (error) reject(this.registryError(error));
          else if (!response?.version) reject(new NexusError(ErrorCode.INTERNAL, 'the registry returned no version'));
          else resolve(response.version);
        });
    });
  }

  private listAliases(modelName: string): Promise<Alias[]> {
    return new Promise((resolve, reject) => {
      this.registry.listAliases(ListAliasesRequest.fromPartial({ modelName }), new Metadata(), { deadline: Date.now() + 10_000 },
        (error, response) => (error ? reject(this.registryError(error)) : resolve(response.aliases)));
    });
  }

  /** Every version number of a model, for ModelMetadata. */
  listVersions(modelName: string): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.registry.listVersions({ modelName }, (error, response) => {
        if (error) reject(NexusError.from(error));
        else resolve(response.versions.map((version) => version.version));
      });
    });
  }

  private async record(modelName: string, version: number): Promise<ModelVersion> {
    const cached = this.records.get(`${modelName}:${version}`);
    if (cached) return cached;
    const record = await this.getVersion(modelName, version);
    this.records.set(versionKey(record), record);
    return record;
  }

  // ---------------------------------------------------------------- following the registry

  /** The model's entry, reading its state from the registry the first time. */
  private async entry(modelName: string): Promise<ModelEntry> {
    let entry = this.models.get(modelName);
    if (!entry) {
      const created: ModelEntry = { name: modelName, view: emptyView(), synced: Promise.resolve(), ready: false, routes: new Map() };
      entry = created;
      this.models.set(modelName, created);
      created.synced = this.sync(created).then(() => {
        created.ready = true;
      }, (error: unknown) => {
        // Forgotten, so the next request asks again (the model may be stored by then).
        if (this.models.get(modelName) === created) this.models.delete(modelName);
        throw error;
      });
    }
    await entry.synced;
    return entry;
  }

  /**
   * Reads a model's newest version and aliases and merges them into its view. Merging only moves
   * forward (versions grow, alias revisions grow), so a read racing the Watch stream is harmless.
   */
  private async sync(entry: ModelEntry): Promise<void> {
    const [latest, aliases] = await Promise.all([this.getVersion(entry.name, 0), this.listAliases(entry.name)]);
    this.records.set(versionKey(latest), latest);
    const changed = applyVersion(entry.view, latest.version);
    for (const alias of aliases) changed.push(...applyAlias(entry.view, alias.alias, alias.revision, targetOfAlias(alias)));
    for (const key of changed) this.follow(entry, key);
  }

  /** Applies one event of the registry's Watch stream. */
  applyEvent(event: WatchResponse): void {
    if (event.versionCreated) {
      const version = event.versionCreated;
      const entry = this.models.get(version.modelName);
      if (!entry) return; // not followed: its first request reads the state afresh
      this.records.set(versionKey(version), version);
      for (const key of applyVersion(entry.view, version.version)) this.follow(entry, key);
    } else if (event.aliasMoved) {
      const entry = this.models.get(event.aliasMoved.modelName);
      if (!entry) return;
      for (const key of applyAliasMove(entry.view, event.aliasMoved)) this.follow(entry, key);
    }
  }

  /** Re-reads every followed model (the Watch stream could not continue from where it was). */
  async resync(): Promise<void> {
    const entries = [...this.models.values()];
    const results = await Promise.allSettled(entries.map(async (entry) => {
      await entry.synced.catch(() => undefined);
      if (this.models.get(entry.name) === entry) await this.sync(entry);
    }));
    results.forEach((result, index) => {
      if (result.status === 'rejected') this.logger?.warn({ err: result.reason, model: entries[index].name }, 're-reading a model failed');
    });
  }

  // ---------------------------------------------------------------- routes

  /** The route for `key`, created (and pointed at its target) on first use. */
  private routeFor(entry: ModelEntry, key: RouteKey): Route {
    let route = entry.routes.get(key);
    if (!route?.active) {
      const target = route?.pending ?? desiredTarget(entry.view, key);
      if (!target) {
        const alias = key.slice('alias:'.length);
        throw notFound(`model '${entry.name}' has no alias '${alias}' (aliases: ${[...entry.view.aliases.keys()].sort().join(', ') || 'none'})`);
      }
      // No traffic follows this route yet, so there is none to keep on an old target: it starts
      // on its target at once, and its first requests wait for the load.
      if (!route) {
        route = { key, active: undefined, pending: undefined, experiment: undefined, lastUsedMs: Date.now() };
        entry.routes.set(key, route);
      }
      route.active = target;
      this.setExperiment(route);
      for (const version of versionsOf(target)) {
        this.servedVersion(entry.name, version).catch((error: unknown) => this.logger?.warn({ err: error, model: entry.name, version }, 'load failed'));
      }
    }
    route.lastUsedMs = Date.now();
    return route;
  }

  private setExperiment(route: Route): void {
    if (!route.active || !isSplit(route.active)) {
      route.experiment = undefined;
      return;
    }
    const alias = route.key === 'latest' ? '' : route.key.slice('alias:'.length);
    if (route.experiment) route.experiment.retarget(route.active);
    else route.experiment = new Experiment(route.active, alias);
  }

  /** Moves a route towards the view's target for it: load and warm first, then switch. */
  private follow(entry: ModelEntry, key: RouteKey): void {
    const route = entry.routes.get(key);
    if (!route) return; // nobody sends traffic this way yet
    const desired = desiredTarget(entry.view, key);
    if (!desired) return;
    if (sameTarget(route.active, desired)) {
      // Back where it is (a move undone before its load finished): stop the pending switch.
      route.pending = undefined;
      return;
    }
    if (sameTarget(route.pending, desired)) return;
    route.pending = desired;
    this.logger?.info({ model: entry.name, route: key, to: splitText(desired) }, 'loading the new target before moving traffic');
    void this.switchWhenReady(entry, route, desired);
  }

  private async switchWhenReady(entry: ModelEntry, route: Route, target: Target): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const models = await Promise.all(versionsOf(target).map((version) => this.servedVersion(entry.name, version)));
        await Promise.all(models.map((model) => model.loaded));
        break;
      } catch (error) {
        if (route.pending !== target) {
          this.retireUnrouted(entry, target);
          return;
        }
        const delay = this.loadRetryDelaysMs[attempt];
        if (delay === undefined) {
          // Traffic stays where it is; the next move of this route tries again.
          this.logger?.error({ err: error, model: entry.name, route: route.key, to: splitText(target) }, 'the new target could not be loaded; traffic stays');
          route.pending = undefined;
          this.retireUnrouted(entry, target);
          return;
        }
        this.logger?.warn({ err: error, model: entry.name, route: route.key, retry_ms: delay }, 'loading the new target failed; retrying');
        await sleep(delay);
        if (route.pending !== target) {
          this.retireUnrouted(entry, target);
          return;
        }
      }
    }
    if (route.pending !== target || entry.routes.get(route.key) !== route) {
      // Superseded while loading: what it loaded may be needed by nobody.
      this.retireUnrouted(entry, target);
      return;
    }
    const previous = route.active;
    route.active = target;
    route.pending = undefined;
    this.setExperiment(route);
    this.logger?.info({ model: entry.name, route: route.key, from: previous && splitText(previous), to: splitText(target) }, 'traffic moved');
    if (previous) this.retireUnrouted(entry, previous);
  }

  /** Every target some route of the model sends or is about to send traffic to. */
  private routedTargets(entry: ModelEntry): Target[] {
    return [...entry.routes.values()].flatMap((route) => [route.active, route.pending].filter((target): target is Target => target !== undefined));
  }

  /** Unloads the versions of `target` that no route needs and the router config does not pin. */
  private retireUnrouted(entry: ModelEntry, target: Target): void {
    const pinned = this.config.models[entry.name]?.split?.arms.map((arm) => arm.version) ?? [];
    for (const version of versionsToRetire(target, this.routedTargets(entry), pinned)) {
      const model = this.served.get(`${entry.name}:${version}`);
      if (model) void this.retire(entry, model);
    }
  }

  /**
   * Unloads a version once nothing is queued, running or about to queue for it, unless a route
   * has come back to it meanwhile.
   */
  private async retire(entry: ModelEntry, model: ServedModel): Promise<void> {
    const stillUnrouted = () => !this.routedTargets(entry).some((target) => versionsOf(target).includes(model.version.version));
    // Requests routed just before the switch take their hold a few microtasks later: let them.
    await sleep(50);
    while (!(model.batcher.idle && model.holders === 0)) {
      await sleep(50);
      if (!stillUnrouted() || this.served.get(versionKey(model.version)) !== model) return;
    }
    if (!stillUnrouted() || this.served.get(versionKey(model.version)) !== model) return;
    model.retired = true;
    this.served.delete(versionKey(model.version));
    this.pool.unload(model.version);
    this.logger?.info({ model: model.version.modelName, version: model.version.version }, 'version unloaded after its queue drained');
  }

  /** Drops routes no request used for `idleRouteMs`, unloading what only they needed. */
  private dropIdleRoutes(): void {
    const now = Date.now();
    for (const entry of this.models.values()) {
      for (const route of [...entry.routes.values()]) {
        if (now - route.lastUsedMs < this.idleRouteMs) continue;
        entry.routes.delete(route.key);
        for (const target of [route.active, route.pending]) if (target) this.retireUnrouted(entry, target);
      }
    }
  }

  // ---------------------------------------------------------------- serving

  /** The served model of one version, loading it the first time. */
  private async servedVersion(modelName: string, version: number): Promise<ServedModel> {
    const existing = this.served.get(`${modelName}:${version}`);
    if (existing) return existing;
    return this.serve(await this.record(modelName, version));
  }

  private serve(version: ModelVersion): ServedModel {
    const key = versionKey(version);
    const existing = this.served.get(key);
    if (existing) return existing;
    const signature = signatureOf(version);
    const { defaultPriority, responseCache, ...policy } = servingConfigFor(this.config, version.modelName, version.batching);
    // A model without a batch dimension takes one request per execution.
    if (!isBatchable(signature.inputs)) policy.maxBatchSize = 1;
    const batcher = new ModelBatcher({
      name: version.modelName,
      policy,
      hasCapacity: () => this.pool.hasCapacity(key),
      run: (inputs, deadlineUnixMs, traceContext) =>
        this.pool.execute(key, { modelName: version.modelName, version: version.version, inputs, deadlineUnixMs, traceContext }),
    });
    const loaded = this.pool.ensureLoaded(version);
    loaded.then(() => this.onModelHealth(version.modelName, true), () => this.onModelHealth(version.modelName, false));
    const cache = responseCache ? new ResponseCache(responseCache) : undefined;
    const model: ServedModel = { version, signature, policy, defaultPriority, batcher, loaded, ready: false, cache, holders: 0, retired: false };
    this.served.set(key, model);
    loaded.then(() => {
      model.ready = true;
    }, () => {});
    // A failed load is forgotten so the next request tries again.
    loaded.catch(() => {
      if (this.served.get(key) === model) this.served.delete(key);
    });
    return model;
  }

  /**
   * Where a request goes: its model_version resolved to a route or a number, an arm chosen when
   * the route splits (sticky by the split's request parameter), and that version's served model.
   */
  async route(modelName: string, versionText: string, parameters: Record<string, InferParameter> = {}): Promise<Routed> {
    if (!this.accepting) throw new NexusError(ErrorCode.UNAVAILABLE, 'the router is shutting down; send the request to another replica');
    if (modelName === '') throw invalidArgument('model_name is required');
    const selector = parseSelector(versionText);
    if (selector.kind === 'version') return { model: await this.servedVersion(modelName, selector.version) };
    if (selector.kind === 'default') {
      const experiment = this.configExperiment(modelName);
      if (experiment) {
        return { model: await this.servedVersion(modelName, armFor(experiment.split, parameters)), experiment };
      }
    }
    const route = await this.routeOf(modelName, routeKeyOf(selector));
    return { model: await this.servedVersion(modelName, armFor(route.active!, parameters)), experiment: route.experiment };
  }

  /**
   * route() without waiting, for the common case: the model already read from the registry, its
   * route in use and the version served, as for every request but a model's first few. Answers
   * as route() would (same choices, same bookkeeping), or undefined when anything is missing;
   * route() then reads or loads it. Saves a request several turns of the event loop.
   */
  routeNow(modelName: string, versionText: string, parameters: Record<string, InferParameter> = {}): Routed | undefined {
    if (!this.accepting || modelName === '') return undefined;
    const selector = parseSelector(versionText);
    if (selector.kind === 'version') {
      const model = this.served.get(`${modelName}:${selector.version}`);
      return model && { model };
    }
    if (selector.kind === 'default') {
      const experiment = this.configExperiment(modelName);
      if (experiment) {
        const model = this.served.get(`${modelName}:${armFor(experiment.split, parameters)}`);
        return model && { model, experiment };
      }
    }
    const entry = this.models.get(modelName);
    if (!entry?.ready) return undefined;
    let key = routeKeyOf(selector);
    if (!key) {
      const choice = defaultRoute(entry.view, (candidate) => entry.routes.get(candidate)?.active !== undefined);
      // A production alias to warm first is route()'s to start.
      if (choice.warm && !entry.routes.has(choice.warm)) return undefined;
      key = choice.key;
    }
    const route = entry.routes.get(key);
    const target = route?.active;
    if (!target) return undefined;
    const model = this.served.get(`${modelName}:${armFor(target, parameters)}`);
    if (!model) return undefined;
    route.lastUsedMs = Date.now();
    return { model, experiment: route.experiment };
  }

  /** The served model a name and model_version lead to (a split's arm chosen at random). */
  async resolve(modelName: string, versionText: string): Promise<ServedModel> {
    return (await this.route(modelName, versionText)).model;
  }

  /** The route of a key, or (undefined) of the default: production if it exists, else latest. */
  private async routeOf(modelName: string, key: RouteKey | undefined): Promise<Route> {
    const entry = await this.entry(modelName);
    if (key) return this.routeFor(entry, key);
    const choice = defaultRoute(entry.view, (candidate) => entry.routes.get(candidate)?.active !== undefined);
    if (choice.warm && !entry.routes.has(choice.warm)) {
      // Production was just created: warm it while traffic stays on latest.
      const warm: Route = { key: choice.warm, active: undefined, pending: undefined, experiment: undefined, lastUsedMs: Date.now() };
      entry.routes.set(choice.warm, warm);
      this.follow(entry, choice.warm);
    }
    return this.routeFor(entry, choice.key);
  }

  /** What a model name and model_version resolve to now (loading it on first use). */
  async describe(modelName: string, versionText: string): Promise<Described> {
    if (modelName === '') throw invalidArgument('name is required');
    const selector = parseSelector(versionText, 'version');
    if (selector.kind === 'version') return { models: [await this.servedVersion(modelName, selector.version)] };
    if (selector.kind === 'default') {
      const experiment = this.configExperiment(modelName);
      if (experiment) return { models: await Promise.all(versionsOf(experiment.split).map((version) => this.servedVersion(modelName, version))), split: experiment.split };
    }
    const route = await this.routeOf(modelName, routeKeyOf(selector));
    const target = route.active!;
    return {
      models: await Promise.all(versionsOf(target).map((version) => this.servedVersion(modelName, version))),
      alias: route.key === 'latest' ? undefined : route.key.slice('alias:'.length),
      split: isSplit(target) ? target : undefined,
    };
  }

  /** Keeps a routed model from being unloaded until `release`; call between routing and queueing. */
  hold(model: ServedModel): void {
    model.holders += 1;
  }

  release(model: ServedModel): void {
    model.holders -= 1;
  }

  /**
   * The model to queue on: `model` once loaded, or, if it was unloaded meanwhile (a request
   * asking for an old version by number), the same version loaded again.
   */
  async live(model: ServedModel): Promise<ServedModel> {
    for (let current = model; ;) {
      await current.loaded;
      if (!current.retired) return current;
      current = await this.servedVersion(current.version.modelName, current.version.version);
    }
  }

  isLoaded(version: ModelVersion): boolean {
    return this.pool.isLoaded(versionKey(version));
  }

  private configExperiment(modelName: string): Experiment | undefined {
    const split = this.config.models[modelName]?.split;
    if (!split) return undefined;
    let experiment = this.configExperiments.get(modelName);
    if (!experiment) {
      experiment = new Experiment(split);
      this.configExperiments.set(modelName, experiment);
    }
    return experiment;
  }

  /**
   * A split's running results: the alias's, or with no alias the one unversioned requests follow
   * (the router config's, else the production alias's). NOT_FOUND when there is none.
   */
  experimentFor(modelName: string, alias = ''): Experiment {
    const name = modelName.slice(0, 128);
    if (alias === '') {
      const configured = this.configExperiment(modelName);
      if (configured) return configured;
    }
    const wanted = alias || DEFAULT_ALIAS;
    const experiment = this.models.get(modelName)?.routes.get(`alias:${wanted}`)?.experiment;
    if (experiment) return experiment;
    throw notFound(alias
      ? `alias '${alias.slice(0, 64)}' of model '${name}' has no A/B split in use on this router; split it with nexus promote ${name} 1=50,2=50 ${alias.slice(0, 64)}`
      : `model '${name}' has no A/B split; set models.${name}.split in the router config, or split its production alias (nexus promote ${name} 1=50,2=50 production)`);
  }

  /** Counts a request from arrival to answer, so a drain waits for it wherever it is. */
  async track<T>(work: () => Promise<T>): Promise<T> {
    this.requestArrived();
    try {
      return await work();
    } finally {
      this.requestAnswered();
    }
  }

  /** A request arrived; every call must be followed by one of requestAnswered (see track). */
  requestArrived(): void {
    this.activeRequests += 1;
  }

  requestAnswered(): void {
    this.activeRequests -= 1;
  }

  /** Refuses new requests and sends queued ones at once; resolves when all are answered or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    this.accepting = false;
    for (const started = Date.now(); Date.now() - started < timeoutMs;) {
      // Flushed on every pass: a request still validating when the drain began queues later.
      for (const model of this.served.values()) model.batcher.flush();
      if (this.activeRequests === 0 && [...this.served.values()].every((model) => model.batcher.idle)) return;
      await new Promise((wake) => setTimeout(wake, 20));
    }
  }

  close(reason: NexusError): void {
    clearInterval(this.sweeper);
    for (const model of this.served.values()) model.batcher.close(reason);
  }
}
