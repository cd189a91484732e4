/**
 * The decisions of the router's model lifecycle, kept pure so they can be tested without a
 * registry or executors: what a request's model_version asks for, how a registry event changes
 * the router's view of a model, which route unversioned requests follow, and which versions may be
 * unloaded once traffic has moved.
 *
 * A route is something requests follow by name rather than by number: `latest` or an alias. Its
 * target is one version, or a split of several by weight (an alias with a split).
 */
import type { Alias, AliasMove } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { invalidArgument } from '../../domain/index.ts';
import type { TrafficSplit } from '../config/index.ts';

/** Where a route sends traffic: one arm (no split) or several by weight, sticky or not. */
export type Target = TrafficSplit;

export type RouteKey = 'latest' | `alias:${string}`;

/** The alias unversioned requests follow when it exists. */
export const DEFAULT_ALIAS = 'production';

/** What a request's model_version asks for. */
export type Selector =
  | { kind: 'default' }
  | { kind: 'latest' }
  | { kind: 'version'; version: number }
  | { kind: 'alias'; alias: string };

const VERSION_NUMBER = /^v?([1-9]\d{0,8})$/;
const ALIAS_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

/**
 * Parses model_version: '' (the default route), 'latest', a version number ('3', or 'v3' as in
 * `nexus show name@v3`), or an alias name ('production', 'staging'). Alias names are lower-case
 * and start with a letter, and the registry reserves 'latest' and 'v<digits>', so the forms never
 * overlap.
 */
export function parseSelector(text: string, field = 'model_version'): Selector {
  if (text === '') return { kind: 'default' };
  if (text === 'latest') return { kind: 'latest' };
  const number = VERSION_NUMBER.exec(text);
  if (number) return { kind: 'version', version: Number(number[1]) };
  if (ALIAS_NAME.test(text)) return { kind: 'alias', alias: text };
  throw invalidArgument(`${field} '${text.slice(0, 64)}' is neither a version number nor an alias name (e.g. 3, latest, production)`);
}

export const singleTarget = (version: number): Target => ({ arms: [{ version, weight: 1 }] });

/** An alias's target from its record or the move that set it. */
export function targetOf(version: number, split: Array<{ version: number; weight: number }>, stickyParameter: string): Target {
  if (split.length === 0) return singleTarget(version);
  return { arms: split.map((arm) => ({ version: arm.version, weight: arm.weight })), ...(stickyParameter ? { stickyParameter } : {}) };
}

export const targetOfAlias = (alias: Alias): Target => targetOf(alias.version, alias.split, alias.stickyParameter);
export const targetOfMove = (move: AliasMove): Target => targetOf(move.toVersion, move.toSplit, move.toStickyParameter);

export function sameTarget(a: Target | undefined, b: Target | undefined): boolean {
  if (!a || !b) return a === b;
  return (a.stickyParameter ?? '') === (b.stickyParameter ?? '') && a.arms.length === b.arms.length
    && a.arms.every((arm, index) => arm.version === b.arms[index].version && arm.weight === b.arms[index].weight);
}

export const isSplit = (target: Target) => target.arms.length > 1;
/** The alias a route follows; undefined for `latest`. */
export const aliasOfRoute = (key: RouteKey): string | undefined => (key === 'latest' ? undefined : key.slice('alias:'.length));
/** The route a selector names; undefined for the default, which depends on the aliases that exist. */
export function routeKeyOf(selector: Selector): RouteKey | undefined {
  if (selector.kind === 'alias') return `alias:${selector.alias}`;
  return selector.kind === 'latest' ? 'latest' : undefined;
}
export const versionsOf = (target: Target) => target.arms.map((arm) => arm.version);

/** The registry's state of one model as this router knows it. */
export interface ModelView {
  /** The newest version number; 0 before the first read. */
  latest: number;
  aliases: Map<string, { revision: number; target: Target }>;
}

export const emptyView = (): ModelView => ({ latest: 0, aliases: new Map() });

/**
 * Applies "version N exists" (a VersionCreated event or a fresh read). Versions only grow, so an
 * older or repeated one changes nothing: events may arrive twice (a re-read overlapping the
 * stream) or out of order with a re-read, and the view still only moves forward.
 */
export function applyVersion(view: ModelView, version: number): RouteKey[] {
  if (version <= view.latest) return [];
  view.latest = version;
  return ['latest'];
}

/**
 * Applies "alias A is at revision R with target T" (an AliasMoved event or a fresh read). A
 * revision not newer than the one known is stale or already applied and changes nothing. Returns
 * the route whose target changed, if any.
 */
export function applyAlias(view: ModelView, alias: string, revision: number, target: Target): RouteKey[] {
  const known = view.aliases.get(alias);
  if (known && known.revision >= revision) return [];
  view.aliases.set(alias, { revision, target });
  return known && sameTarget(known.target, target) ? [] : [`alias:${alias}`];
}

export const applyAliasMove = (view: ModelView, move: AliasMove) => applyAlias(view, move.alias, move.revision, targetOfMove(move));

/** Where a route should send traffic now, by the view; undefined when its alias does not exist. */
export function desiredTarget(view: ModelView, key: RouteKey): Target | undefined {
  if (key === 'latest') return view.latest > 0 ? singleTarget(view.latest) : undefined;
  return view.aliases.get(aliasOfRoute(key)!)?.target;
}

/**
 * The route unversioned requests follow: the `production` alias if it exists, else `latest`.
 * Traffic already flowing on `latest` stays there while a newly created production alias warms
 * up (`warm`), so creating the alias never makes requests wait for a load.
 */
export function defaultRoute(view: ModelView, isActive: (key: RouteKey) => boolean): { key: RouteKey; warm?: RouteKey } {
  const production: RouteKey = `alias:${DEFAULT_ALIAS}`;
  if (!view.aliases.has(DEFAULT_ALIAS)) return { key: 'latest' };
  if (isActive(production) || !isActive('latest')) return { key: production };
  return { key: 'latest', warm: production };
}

/**
 * The versions `previous` sent traffic to that may be unloaded now: those no route still sends
 * (or is about to send) traffic to and that are not pinned (e.g. by the router config's split).
 */
export function versionsToRetire(previous: Target, stillRouted: Iterable<Target>, pinned: Iterable<number> = []): number[] {
  const keep = new Set<number>(pinned);
  for (const target of stillRouted) for (const version of versionsOf(target)) keep.add(version);
  return versionsOf(previous).filter((version) => !keep.has(version));
}
