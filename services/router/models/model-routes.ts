/**
 * The routes (`latest` and aliases) of every model the router follows, kept current from the
 * registry: read once per model, then moved by Watch events. A route whose target changes loads
 * and warms the new versions while traffic stays on the old target, moves traffic once every new
 * version is READY (retrying failed loads with backoff), and retires the versions no route needs.
 */
import type { WatchResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { formatSplit, notFound } from '../../domain/index.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { Experiment } from '../features/index.ts';
import type { ConfigSplits } from './config-splits.ts';
import type { RegistryView } from './registry-view.ts';
import {
  aliasOfRoute, applyAlias, applyAliasMove, applyVersion, defaultRoute, desiredTarget, emptyView, isSplit,
  sameTarget, targetOfAlias, versionsOf, versionsToRetire, type ModelView, type RouteKey, type Target,
} from './route-table.ts';
import type { ServedVersions } from './served-versions.ts';

/** A route of one model: where its traffic goes, and where it is moving. */
export interface Route {
  key: RouteKey;
  /** Where traffic goes now; every version in it has been asked to load. */
  active: Target | undefined;
  /** The target being loaded and warmed; traffic moves to it once all of it is READY. */
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

export interface ModelRoutesOptions {
  registry: RegistryView;
  versions: ServedVersions;
  splits: ConfigSplits;
  logger: Logger | undefined;
  /** A route no request used for this long is dropped and its versions unloaded, in ms. Default 10 minutes. */
  idleRouteMs?: number;
  /** Delays between attempts to load a route's new target, in ms. Default 1 s, 2 s, 4 s, 8 s, 16 s. */
  loadRetryDelaysMs?: number[];
}

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));
const newRoute = (key: RouteKey): Route => ({ key, active: undefined, pending: undefined, experiment: undefined, lastUsedMs: Date.now() });

export class ModelRoutes {
  private readonly models = new Map<string, ModelEntry>();
  private readonly registry: RegistryView;
  private readonly versions: ServedVersions;
  private readonly splits: ConfigSplits;
  private readonly logger: Logger | undefined;
  private readonly idleRouteMs: number;
  private readonly loadRetryDelaysMs: number[];
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: ModelRoutesOptions) {
    this.registry = options.registry;
    this.versions = options.versions;
    this.splits = options.splits;
    this.logger = options.logger;
    this.idleRouteMs = options.idleRouteMs ?? 600_000;
    this.loadRetryDelaysMs = options.loadRetryDelaysMs ?? [1000, 2000, 4000, 8000, 16_000];
    this.sweeper = setInterval(() => this.dropIdleRoutes(), Math.max(1000, Math.min(60_000, this.idleRouteMs / 2)));
    this.sweeper.unref();
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
    const [latest, aliases] = await Promise.all([this.registry.getVersion(entry.name, 0), this.registry.listAliases(entry.name)]);
    this.versions.remember(latest);
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
      this.versions.remember(version);
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

  // ---------------------------------------------------------------- the routes requests follow

  /**
   * The route requests of `key` (undefined: the default) follow now, without waiting: undefined
   * when the model was not read yet or the route has no target in use (`active` then sets it up).
   */
  activeNow(modelName: string, key: RouteKey | undefined): Route | undefined {
    const entry = this.models.get(modelName);
    if (!entry?.ready) return undefined;
    if (!key) {
      const choice = defaultRoute(entry.view, (candidate) => entry.routes.get(candidate)?.active !== undefined);
      // A production alias to warm first is active()'s to start.
      if (choice.warm && !entry.routes.has(choice.warm)) return undefined;
      key = choice.key;
    }
    const route = entry.routes.get(key);
    if (!route?.active) return undefined;
    route.lastUsedMs = Date.now();
    return route;
  }

  /** The route of `key` (undefined: the default: production if it exists, else latest), set up on first use. */
  async active(modelName: string, key: RouteKey | undefined): Promise<Route> {
    const entry = await this.entry(modelName);
    if (key) return this.routeFor(entry, key);
    const choice = defaultRoute(entry.view, (candidate) => entry.routes.get(candidate)?.active !== undefined);
    if (choice.warm && !entry.routes.has(choice.warm)) {
      // Production was just created: warm it while traffic stays on latest.
      entry.routes.set(choice.warm, newRoute(choice.warm));
      this.follow(entry, choice.warm);
    }
    return this.routeFor(entry, choice.key);
  }

  /** The running results of an alias's split in use on this router, if any. */
  experimentOf(modelName: string, alias: string): Experiment | undefined {
    return this.models.get(modelName)?.routes.get(`alias:${alias}`)?.experiment;
  }

  /** The route for `key`, created (and pointed at its target) on first use. */
  private routeFor(entry: ModelEntry, key: RouteKey): Route {
    let route = entry.routes.get(key);
    if (!route?.active) {
      const target = route?.pending ?? desiredTarget(entry.view, key);
      if (!target) {
        throw notFound(`model '${entry.name}' has no alias '${aliasOfRoute(key)}' (aliases: ${[...entry.view.aliases.keys()].sort().join(', ') || 'none'})`);
      }
      // No traffic follows this route yet, so there is none to keep on an old target: it starts
      // on its target at once, and its first requests wait for the load.
      if (!route) {
        route = newRoute(key);
        entry.routes.set(key, route);
      }
      route.active = target;
      this.setExperiment(route);
      for (const version of versionsOf(target)) {
        this.versions.get(entry.name, version).catch((error: unknown) => this.logger?.warn({ err: error, model: entry.name, version }, 'load failed'));
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
    if (route.experiment) route.experiment.retarget(route.active);
    else route.experiment = new Experiment(route.active, aliasOfRoute(route.key) ?? '');
  }

  // ---------------------------------------------------------------- moving traffic

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
    this.logger?.info({ model: entry.name, route: key, to: formatSplit(desired.arms) }, 'loading the new target before moving traffic');
    void this.switchWhenReady(entry, route, desired);
  }

  private async switchWhenReady(entry: ModelEntry, route: Route, target: Target): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const models = await Promise.all(versionsOf(target).map((version) => this.versions.get(entry.name, version)));
        await Promise.all(models.map((model) => model.loaded()));
        break;
      } catch (error) {
        if (route.pending !== target) {
          this.retireUnrouted(entry, target);
          return;
        }
        const delay = this.loadRetryDelaysMs[attempt];
        if (delay === undefined) {
          // Traffic stays where it is; the next move of this route tries again.
          this.logger?.error({ err: error, model: entry.name, route: route.key, to: formatSplit(target.arms) }, 'the new target could not be loaded; traffic stays');
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
    this.logger?.info({ model: entry.name, route: route.key, from: previous && formatSplit(previous.arms), to: formatSplit(target.arms) }, 'traffic moved');
    if (previous) this.retireUnrouted(entry, previous);
  }

  /** Every target some route of the model sends or is about to send traffic to. */
  private routedTargets(entry: ModelEntry): Target[] {
    return [...entry.routes.values()].flatMap((route) => [route.active, route.pending].filter((target): target is Target => target !== undefined));
  }

  /** Retires the versions of `target` that no route needs and the router config does not pin. */
  private retireUnrouted(entry: ModelEntry, target: Target): void {
    for (const version of versionsToRetire(target, this.routedTargets(entry), this.splits.pinned(entry.name))) {
      const model = this.versions.now(entry.name, version);
      const unneeded = () => !this.routedTargets(entry).some((routed) => versionsOf(routed).includes(version));
      if (model) void this.versions.retire(model, unneeded);
    }
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

  close(): void {
    clearInterval(this.sweeper);
  }
}
