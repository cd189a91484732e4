/** The router's lifecycle decisions: selectors, which events move which routes, defaults, retirement. */
import { describe, expect, it } from 'vitest';
import { AliasMove } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import {
  applyAlias, applyAliasMove, applyVersion, defaultRoute, desiredTarget, emptyView, parseSelector, sameTarget, singleTarget,
  versionsToRetire, type RouteKey,
} from '../../../services/router/models/route-table.ts';

describe('model_version selectors', () => {
  it('reads empty, latest, numbers and alias names', () => {
    expect(parseSelector('')).toEqual({ kind: 'default' });
    expect(parseSelector('latest')).toEqual({ kind: 'latest' });
    expect(parseSelector('3')).toEqual({ kind: 'version', version: 3 });
    expect(parseSelector('v12')).toEqual({ kind: 'version', version: 12 });
    expect(parseSelector('production')).toEqual({ kind: 'alias', alias: 'production' });
    expect(parseSelector('canary-2')).toEqual({ kind: 'alias', alias: 'canary-2' });
  });

  it('refuses anything else, naming the field', () => {
    for (const bad of ['0', '-1', '1.5', 'Production', '2nd', 'a b', 'x'.repeat(65), '01']) {
      expect(() => parseSelector(bad), bad).toThrow(/model_version '.*' is neither a version number nor an alias name/);
    }
    expect(() => parseSelector('!', 'version')).toThrow(/^version '!'/);
  });
});

const move = (fields: Partial<AliasMove>) => AliasMove.fromPartial({ modelName: 'iris', alias: 'production', ...fields });

describe('which events move which routes', () => {
  it('moves latest only for a newer version, so repeats and re-reads change nothing', () => {
    const view = emptyView();
    expect(applyVersion(view, 2)).toEqual(['latest']);
    expect(applyVersion(view, 2)).toEqual([]);
    expect(applyVersion(view, 1)).toEqual([]);
    expect(applyVersion(view, 3)).toEqual(['latest']);
    expect(desiredTarget(view, 'latest')).toEqual(singleTarget(3));
  });

  it('moves an alias route only for a newer revision with a different target', () => {
    const view = emptyView();
    expect(applyAliasMove(view, move({ revision: 1, toVersion: 1 }))).toEqual(['alias:production']);
    // The same event again (a resend, or a re-read that overlapped the stream).
    expect(applyAliasMove(view, move({ revision: 1, toVersion: 1 }))).toEqual([]);
    expect(applyAliasMove(view, move({ revision: 3, fromVersion: 2, toVersion: 3 }))).toEqual(['alias:production']);
    // An older move arriving late (a re-read racing the stream) must not move it back.
    expect(applyAliasMove(view, move({ revision: 2, fromVersion: 1, toVersion: 2 }))).toEqual([]);
    expect(desiredTarget(view, 'alias:production')).toEqual(singleTarget(3));
    // A newer revision with the same target (e.g. moved away and back) keeps the route where it is.
    expect(applyAlias(view, 'production', 5, singleTarget(3))).toEqual([]);
    expect(view.aliases.get('production')?.revision).toBe(5);
  });

  it('reads a split from the move, and a change of weights alone moves the route', () => {
    const view = emptyView();
    applyAliasMove(view, move({ revision: 1, toVersion: 3, toSplit: [{ version: 3, weight: 90 }, { version: 4, weight: 10 }], toStickyParameter: 'user' }));
    expect(desiredTarget(view, 'alias:production')).toEqual({ arms: [{ version: 3, weight: 90 }, { version: 4, weight: 10 }], stickyParameter: 'user' });
    expect(applyAliasMove(view, move({ revision: 2, toVersion: 3, toSplit: [{ version: 3, weight: 50 }, { version: 4, weight: 50 }], toStickyParameter: 'user' })))
      .toEqual(['alias:production']);
    expect(sameTarget({ arms: [{ version: 3, weight: 1 }] }, singleTarget(3))).toBe(true);
    expect(sameTarget({ arms: [{ version: 3, weight: 1 }, { version: 4, weight: 1 }] }, { arms: [{ version: 3, weight: 1 }, { version: 4, weight: 1 }], stickyParameter: 'user' })).toBe(false);
  });

  it('knows no target for an alias that does not exist', () => {
    expect(desiredTarget(emptyView(), 'alias:staging')).toBeUndefined();
    expect(desiredTarget(emptyView(), 'latest')).toBeUndefined();
  });
});

describe('the default route', () => {
  const view = emptyView();
  applyVersion(view, 4);
  const active = (...keys: RouteKey[]) => (key: RouteKey) => keys.includes(key);

  it('is latest without a production alias', () => {
    expect(defaultRoute(view, active())).toEqual({ key: 'latest' });
  });

  it('is production once it exists; traffic on latest stays there while production warms', () => {
    applyAlias(view, 'production', 1, singleTarget(2));
    expect(defaultRoute(view, active())).toEqual({ key: 'alias:production' });
    expect(defaultRoute(view, active('latest'))).toEqual({ key: 'latest', warm: 'alias:production' });
    expect(defaultRoute(view, active('latest', 'alias:production'))).toEqual({ key: 'alias:production' });
  });
});

describe('retirement', () => {
  it('unloads only versions no route sends traffic to and nothing pins', () => {
    const previous = { arms: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }] };
    expect(versionsToRetire(previous, [singleTarget(3)])).toEqual([1, 2]);
    expect(versionsToRetire(previous, [singleTarget(3), singleTarget(2)])).toEqual([1]);
    expect(versionsToRetire(previous, [singleTarget(3)], [1])).toEqual([2]);
    expect(versionsToRetire(singleTarget(3), [singleTarget(3)])).toEqual([]);
  });
});
