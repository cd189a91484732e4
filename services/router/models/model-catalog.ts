/**
 * Which model versions the router serves, and where each request goes: the facade over the
 * served versions, the routes that follow the registry and the resolver.
 *
 * A request names a model and a model_version: a number, `latest`, an alias (`production`,
 * `staging`), or nothing (the router config's split if there is one, else the `production`
 * alias if it exists, else `latest`). Numbers are served as asked. `latest` and aliases are
 * routes: their targets (one version, or a split by weight) come from the registry, read once per
 * model and then kept current by the registry's Watch stream; nothing polls. ModelReady and
 * ModelMetadata resolve the same way, so they describe where traffic goes at that moment.
 */
import type { InferParameter } from '../../protocol/generated/inference/grpc_service.ts';
import type { WatchResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { invalidArgument, notFound, type NexusError } from '../../domain/index.ts';
import type { Logger } from '../../telemetry/logger.ts';
import type { BatcherReporter } from '../batching/index.ts';
import { DEFAULT_SERVING_CONFIG, type RouterConfig } from '../config/index.ts';
import { armFor, type Experiment } from '../features/index.ts';
import { ConfigSplits } from './config-splits.ts';
import { ModelRoutes } from './model-routes.ts';
import type { RegistryView, VersionHost } from './registry-view.ts';
import { Resolver, type Resolution } from './resolver.ts';
import { DEFAULT_ALIAS, isSplit, parseSelector, versionsOf, type Target } from './route-table.ts';
import type { ServedVersion } from './served-version.ts';
import { ServedVersions } from './served-versions.ts';

/** Where one request goes. */
export interface Routed {
  model: ServedVersion;
  /** The split the request went through, when it went through one. */
  experiment?: Experiment;
}

/** What a model name and model_version resolve to now, for ModelReady and ModelMetadata. */
export interface Described {
  /** Every version traffic goes to (one, or each arm of a split), the control first. */
  models: ServedVersion[];
  /** The alias followed, if any. */
  alias?: string;
  /** The split followed, if any. */
  split?: Target;
}

export interface CatalogOptions {
  /** Serving settings per model (see config/router-config.ts). Default: built-in defaults only. */
  config?: RouterConfig;
  /** Told when a model becomes servable (loaded and warmed) or a load of it fails. */
  onModelHealth?: (modelName: string, serving: boolean) => void;
  logger?: Logger;
  /** A route no request used for this long is dropped and its versions unloaded, in ms. Default 10 minutes. */
  idleRouteMs?: number;
  /** Delays between attempts to load a route's new target, in ms. Default 1 s, 2 s, 4 s, 8 s, 16 s. */
  loadRetryDelaysMs?: number[];
  /** How often a draining version checks whether it is idle, in ms. Default 50. */
  drainPollMs?: number;
  /** The reporter of one model's batcher. Default: none. */
  batcherReporter?: (modelName: string) => BatcherReporter;
}

export class ModelCatalog {
  private readonly registry: RegistryView;
  private readonly host: VersionHost;
  private readonly versions: ServedVersions;
  private readonly routes: ModelRoutes;
  private readonly splits: ConfigSplits;
  private readonly resolver: Resolver;

  constructor(registry: RegistryView, host: VersionHost, options: CatalogOptions = {}) {
    this.registry = registry;
    this.host = host;
    const config = options.config ?? { defaults: DEFAULT_SERVING_CONFIG, models: {} };
    this.splits = new ConfigSplits(config);
    this.versions = new ServedVersions({
      registry, host, config, logger: options.logger, onModelHealth: options.onModelHealth ?? (() => {}),
      batcherReporter: options.batcherReporter, drainPollMs: options.drainPollMs,
    });
    this.routes = new ModelRoutes({
      registry, versions: this.versions, splits: this.splits, logger: options.logger,
      idleRouteMs: options.idleRouteMs, loadRetryDelaysMs: options.loadRetryDelaysMs,
    });
    this.resolver = new Resolver(this.routes, this.splits);
    host.onCapacity(() => {
      for (const model of this.versions.all()) model.batcher.pump();
    });
  }

  /**
   * Where a request goes: its model_version resolved, an arm chosen when it leads to a split
   * (sticky by the split's request parameter), and that version's served model. Answers without
   * waiting when everything is in place, as for every request but a model's first few.
   */
  route(modelName: string, versionText: string, parameters: Record<string, InferParameter> = {}): Routed | Promise<Routed> {
    if (modelName === '') throw invalidArgument('model_name is required');
    const resolution = this.resolver.resolve(modelName, parseSelector(versionText));
    if (resolution instanceof Promise) return resolution.then((resolved) => this.servedArm(modelName, resolved, parameters));
    return this.servedArm(modelName, resolution, parameters);
  }

  /**
   * The version a request goes to now, decided without waiting or loading anything; undefined
   * when routing would have to wait (a model's first requests) or would refuse the request.
   */
  routeNow(modelName: string, versionText: string, parameters: Record<string, InferParameter> = {}): ServedVersion | undefined {
    if (modelName === '') return undefined;
    let resolution: Resolution | undefined;
    try {
      resolution = this.resolver.now(modelName, parseSelector(versionText));
    } catch {
      return undefined;
    }
    return resolution && this.versions.now(modelName, armFor(resolution.target, parameters));
  }

  private servedArm(modelName: string, resolution: Resolution, parameters: Record<string, InferParameter>): Routed | Promise<Routed> {
    const version = armFor(resolution.target, parameters);
    const { experiment } = resolution;
    const model = this.versions.now(modelName, version);
    if (model) return { model, experiment };
    return this.versions.get(modelName, version).then((served) => ({ model: served, experiment }));
  }

  /** The served model a name and model_version lead to (a split's arm chosen at random). */
  async resolve(modelName: string, versionText: string): Promise<ServedVersion> {
    return (await this.route(modelName, versionText)).model;
  }

  /** What a model name and model_version resolve to now (loading it on first use). */
  async describe(modelName: string, versionText: string): Promise<Described> {
    if (modelName === '') throw invalidArgument('name is required');
    const { target, alias } = await this.resolver.resolve(modelName, parseSelector(versionText, 'version'));
    return {
      models: await Promise.all(versionsOf(target).map((version) => this.versions.get(modelName, version))),
      alias,
      split: isSplit(target) ? target : undefined,
    };
  }

  /** Every version number of a model, for ModelMetadata. */
  listVersions(modelName: string): Promise<number[]> {
    return this.registry.listVersions(modelName);
  }

  /** Some ready executor holds the version. */
  isLoaded(model: ServedVersion): boolean {
    return this.host.isLoaded(model.key);
  }

  /** Keeps a routed model from being unloaded until `release`; call between routing and queueing. */
  hold(model: ServedVersion): void {
    model.holders += 1;
  }

  release(model: ServedVersion): void {
    model.holders -= 1;
  }

  /** The version to queue on: `model` once loaded, or the same version served again if it was unloaded. */
  live(model: ServedVersion): Promise<ServedVersion> {
    return this.versions.live(model);
  }

  /**
   * A split's running results: the alias's, or with no alias the one unversioned requests follow
   * (the router config's, else the production alias's). NOT_FOUND when there is none.
   */
  experimentFor(modelName: string, alias = ''): Experiment {
    const name = modelName.slice(0, 128);
    const configured = alias === '' ? this.splits.of(modelName) : undefined;
    const experiment = configured ?? this.routes.experimentOf(modelName, alias || DEFAULT_ALIAS);
    if (experiment) return experiment;
    throw notFound(alias
      ? `alias '${alias.slice(0, 64)}' of model '${name}' has no A/B split in use on this router; split it with nexus promote ${name} 1=50,2=50 ${alias.slice(0, 64)}`
      : `model '${name}' has no A/B split; set models.${name}.split in the router config, or split its production alias (nexus promote ${name} 1=50,2=50 production)`);
  }

  /** Applies one event of the registry's Watch stream. */
  applyEvent(event: WatchResponse): void {
    this.routes.applyEvent(event);
  }

  /** Re-reads every followed model (the Watch stream could not continue from where it was). */
  resync(): Promise<void> {
    return this.routes.resync();
  }

  /** Sends everything queued at once, without waiting for company (shutdown drain). */
  flush(): void {
    for (const model of this.versions.all()) model.batcher.flush();
  }

  /** True when nothing is queued or running on any served version. */
  get idle(): boolean {
    return [...this.versions.all()].every((model) => model.batcher.idle);
  }

  close(reason: NexusError): void {
    this.routes.close();
    for (const model of this.versions.all()) model.batcher.close(reason);
  }
}
