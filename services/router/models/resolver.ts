/**
 * What a model name and model_version lead to: the one place the selector is read. A version
 * number and the router config's split need no registry; `latest`, an alias or the default
 * follow a route. `now` answers without waiting whenever it can (every request but a model's
 * first few); `resolve` falls back to reading the registry and setting the route up. Routing a
 * request and describing a model (ModelReady, ModelMetadata) both go through it.
 */
import type { Experiment } from '../features/index.ts';
import type { ConfigSplits } from './config-splits.ts';
import type { ModelRoutes, Route } from './model-routes.ts';
import { aliasOfRoute, routeKeyOf, singleTarget, type Selector, type Target } from './route-table.ts';

/** Where a selector leads now. */
export interface Resolution {
  /** The version traffic goes to, or the split it is shared by. */
  target: Target;
  /** The split's running results, when the target is a split. */
  experiment?: Experiment;
  /** The alias followed, if any. */
  alias?: string;
}

const ofRoute = (route: Route): Resolution => ({ target: route.active!, experiment: route.experiment, alias: aliasOfRoute(route.key) });

export class Resolver {
  private readonly routes: ModelRoutes;
  private readonly splits: ConfigSplits;

  constructor(routes: ModelRoutes, splits: ConfigSplits) {
    this.routes = routes;
    this.splits = splits;
  }

  /** What needs no registry: a version number, or the default when the config splits the model. */
  private fixed(modelName: string, selector: Selector): Resolution | undefined {
    if (selector.kind === 'version') return { target: singleTarget(selector.version) };
    if (selector.kind === 'default') {
      const experiment = this.splits.of(modelName);
      if (experiment) return { target: experiment.split, experiment };
    }
    return undefined;
  }

  /** The resolution without waiting, or undefined when the model or its route is not set up yet. */
  now(modelName: string, selector: Selector): Resolution | undefined {
    const fixed = this.fixed(modelName, selector);
    if (fixed) return fixed;
    const route = this.routes.activeNow(modelName, routeKeyOf(selector));
    return route && ofRoute(route);
  }

  /** The resolution, at once when `now` has it, else once the model is read and its route set up. */
  resolve(modelName: string, selector: Selector): Resolution | Promise<Resolution> {
    return this.now(modelName, selector) ?? this.routes.active(modelName, routeKeyOf(selector)).then(ofRoute);
  }
}
