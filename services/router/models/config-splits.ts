/** The A/B splits the router config sets per model, each with its running results. */
import type { RouterConfig } from '../config/index.ts';
import { Experiment } from '../features/index.ts';

export class ConfigSplits {
  private readonly config: RouterConfig;
  private readonly experiments = new Map<string, Experiment>();

  constructor(config: RouterConfig) {
    this.config = config;
  }

  /** The model's configured split, or undefined when its config sets none. */
  of(modelName: string): Experiment | undefined {
    const split = this.config.models[modelName]?.split;
    if (!split) return undefined;
    let experiment = this.experiments.get(modelName);
    if (!experiment) {
      experiment = new Experiment(split);
      this.experiments.set(modelName, experiment);
    }
    return experiment;
  }

  /** Versions the config's split sends traffic to: they stay loaded whatever the routes do. */
  pinned(modelName: string): number[] {
    return this.config.models[modelName]?.split?.arms.map((arm) => arm.version) ?? [];
  }
}
