/**
 * The catalog against a fake registry and fake executors: each served version's lifecycle
 * (LOADING → READY → DRAINING → UNLOADED), failed loads, a request holding a retired version,
 * and a route that moves only once its new target is READY.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/index.ts';
import { ModelCatalog, VersionState } from '../../../services/router/models/index.ts';
import { FakeHost, FakeRegistry, record, settle } from '../fakes.ts';

const catalogs: ModelCatalog[] = [];
function catalogOf(registry: FakeRegistry, host: FakeHost, health: Array<[string, boolean]> = []): ModelCatalog {
  const catalog = new ModelCatalog(registry, host, {
    drainPollMs: 1, loadRetryDelaysMs: [], onModelHealth: (name, serving) => health.push([name, serving]),
  });
  catalogs.push(catalog);
  return catalog;
}
afterEach(() => {
  for (const catalog of catalogs.splice(0)) catalog.close(new NexusError(ErrorCode.UNAVAILABLE, 'test over'));
});

/** Waits (on real timers) until `condition` holds, failing after a second. */
async function until(condition: () => boolean): Promise<void> {
  for (const started = Date.now(); !condition();) {
    if (Date.now() - started > 1000) throw new Error('condition not reached within 1 s');
    await new Promise((wake) => setTimeout(wake, 2));
  }
}

describe('a served version', () => {
  it('is LOADING until an executor has it, then READY, and reports the model healthy', async () => {
    const host = new FakeHost();
    const health: Array<[string, boolean]> = [];
    const catalog = catalogOf(new FakeRegistry({ iris: 1 }), host, health);
    const model = await catalog.resolve('iris', '1');
    expect(model.state).toBe(VersionState.LOADING);
    expect(model.servable).toBe(false);
    host.finishLoad('iris:1');
    await settle();
    expect(model.state).toBe(VersionState.READY);
    expect(model.servable).toBe(true);
    expect(health).toEqual([['iris', true]]);
  });

  it('goes UNLOADED with the reason when its load fails, and the next request loads it afresh', async () => {
    const host = new FakeHost();
    const health: Array<[string, boolean]> = [];
    const catalog = catalogOf(new FakeRegistry({ iris: 1 }), host, health);
    const failed = await catalog.resolve('iris', '1');
    host.finishLoad('iris:1', new NexusError(ErrorCode.INTERNAL, 'shader did not compile'));
    await expect(catalog.live(failed)).rejects.toMatchObject({ code: ErrorCode.INTERNAL, message: 'shader did not compile' });
    expect(failed.state).toBe(VersionState.UNLOADED);
    expect(failed.reason).toMatch(/load failed: shader did not compile/);
    expect(health).toEqual([['iris', false]]);

    const again = await catalog.resolve('iris', '1');
    expect(again).not.toBe(failed);
    expect(again.state).toBe(VersionState.LOADING);
    expect(host.loadCalls).toEqual(['iris:1', 'iris:1']);
  });
});

describe('routes', () => {
  it('move traffic only once the new target is READY, then drain and unload the old version', async () => {
    const host = new FakeHost();
    const registry = new FakeRegistry({ iris: 1 });
    const catalog = catalogOf(registry, host);
    const first = await catalog.resolve('iris', 'latest');
    host.finishLoad('iris:1');
    await settle();
    expect(first.version.version).toBe(1);

    registry.latest.iris = 2;
    catalog.applyEvent({ cursor: 1, recordedAtUnixMs: 0, versionCreated: record('iris', 2) } as never);
    await settle();
    // Version 2 is loading: traffic stays on 1, without waiting.
    expect(host.loadCalls).toContain('iris:2');
    const during = catalog.route('iris', 'latest');
    expect(during).not.toBeInstanceOf(Promise);
    expect((during as { model: { version: { version: number } } }).model.version.version).toBe(1);
    expect(first.state).toBe(VersionState.READY);

    host.finishLoad('iris:2');
    await settle();
    expect((await catalog.resolve('iris', 'latest')).version.version).toBe(2);
    // No route needs version 1 any more: DRAINING, then UNLOADED once idle.
    await until(() => first.state === VersionState.UNLOADED);
    expect(first.reason).toMatch(/drained/);
    expect(host.unloaded).toEqual(['iris:1']);
  });

  it('keep traffic where it is when the new target fails to load', async () => {
    const host = new FakeHost();
    const registry = new FakeRegistry({ iris: 1 });
    const catalog = catalogOf(registry, host);
    const first = await catalog.resolve('iris', 'latest');
    host.finishLoad('iris:1');
    registry.latest.iris = 2;
    catalog.applyEvent({ cursor: 1, recordedAtUnixMs: 0, versionCreated: record('iris', 2) } as never);
    await settle();
    host.finishLoad('iris:2', new NexusError(ErrorCode.INTERNAL, 'out of memory'));
    await settle();
    expect(await catalog.resolve('iris', 'latest')).toBe(first);
    expect(first.state).toBe(VersionState.READY);
    expect(host.unloaded).toEqual([]);
  });

  it('keep a draining version loaded while a request holds it', async () => {
    const host = new FakeHost(true);
    const registry = new FakeRegistry({ iris: 1 });
    const catalog = catalogOf(registry, host);
    const first = await catalog.resolve('iris', 'latest');
    await settle();
    catalog.hold(first);
    registry.latest.iris = 2;
    catalog.applyEvent({ cursor: 1, recordedAtUnixMs: 0, versionCreated: record('iris', 2) } as never);
    await until(() => first.state === VersionState.DRAINING);
    await new Promise((wake) => setTimeout(wake, 20));
    expect(first.state).toBe(VersionState.DRAINING); // held: not unloaded under the request
    catalog.release(first);
    await until(() => first.state === VersionState.UNLOADED);
    expect(host.unloaded).toEqual(['iris:1']);
  });
});

describe('a request holding a retired version', () => {
  it('is queued on the same version loaded again', async () => {
    const host = new FakeHost(true);
    const registry = new FakeRegistry({ iris: 1 });
    const catalog = catalogOf(registry, host);
    const retired = await catalog.resolve('iris', 'latest');
    await settle();
    registry.latest.iris = 2;
    catalog.applyEvent({ cursor: 1, recordedAtUnixMs: 0, versionCreated: record('iris', 2) } as never);
    await until(() => retired.state === VersionState.UNLOADED);

    const live = await catalog.live(retired);
    expect(live).not.toBe(retired);
    expect(live.version.version).toBe(1);
    expect(live.state).toBe(VersionState.READY);
    expect(host.loadCalls.filter((key) => key === 'iris:1')).toHaveLength(2);
  });
});
