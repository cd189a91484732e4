/**
 * The one request path, without sockets: a task goes through the same admission, drain
 * accounting, request and latency reporting and A/B recording as ModelInfer, and a task whose
 * request is malformed fails its submit at once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TaskState } from '../../../services/protocol/generated/nexus/router/v1/tasks.ts';
import type { BatchResult } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { ErrorCode, NexusError } from '../../../services/domain/index.ts';
import { DEFAULT_SERVING_CONFIG } from '../../../services/router/config/index.ts';
import { ModelCatalog } from '../../../services/router/models/index.ts';
import { createRequestPath, TaskStore, type RequestReporter } from '../../../services/router/request-path/index.ts';
import { deferred, doubled, FakeHost, FakeRegistry, inferRequest, settle } from '../fakes.ts';

class RecordingReporter implements RequestReporter {
  readonly finished: Array<{ model: string; outcome: string; seconds: number }> = [];
  readonly lookups: Array<{ model: string; hit: boolean }> = [];
  requestFinished(model: string, outcome: string, seconds: number): void {
    this.finished.push({ model, outcome, seconds });
  }
  cacheLookup(model: string, hit: boolean): void {
    this.lookups.push({ model, hit });
  }
}

const catalogs: ModelCatalog[] = [];
afterEach(() => {
  for (const catalog of catalogs.splice(0)) catalog.close(new NexusError(ErrorCode.UNAVAILABLE, 'test over'));
});

/** iris 1 and 2, split 50/50 by the router config; batches wait on `gate` when one is set. */
function setUp() {
  const host = new FakeHost(true);
  const catalog = new ModelCatalog(new FakeRegistry({ iris: 2 }), host, {
    config: {
      defaults: { ...DEFAULT_SERVING_CONFIG, maxQueueDelayMs: 0 },
      models: { iris: { split: { arms: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }] } } },
    },
  });
  catalogs.push(catalog);
  const reporter = new RecordingReporter();
  const requests = createRequestPath(catalog, { reporter, drainPollMs: 1 });
  const tasks = new TaskStore(requests.handle);
  return { host, catalog, reporter, requests, tasks };
}

const armRequests = (catalog: ModelCatalog) => catalog.experimentFor('iris').report('iris').arms.map((arm) => arm.requests);

describe('a task on the request path', () => {
  it('is counted for the drain until answered, reported with its latency, and recorded in the A/B split', async () => {
    const { host, catalog, reporter, requests, tasks } = setUp();
    const gate = deferred<void>();
    host.runBatch = async (batch): Promise<BatchResult> => {
      await gate.promise;
      return doubled(batch);
    };
    const submitted = await tasks.submit(inferRequest('iris'));
    expect(submitted.state).toBe(TaskState.TASK_STATE_QUEUED);
    await settle();
    expect(host.batches).toHaveLength(1); // running on the executor
    expect(requests.inFlight).toBe(1);

    let drained = false;
    const drain = requests.drain(5_000).then(() => { drained = true; });
    await new Promise((wake) => setTimeout(wake, 20));
    expect(drained).toBe(false); // the drain waits for the task
    gate.resolve();
    await drain;
    expect(requests.inFlight).toBe(0);

    const status = tasks.get(submitted.taskId);
    expect(status.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    expect(status.response!.outputs[0].contents!.fp32Contents).toEqual([2, 4]);
    expect(reporter.finished).toHaveLength(1);
    expect(reporter.finished[0]).toMatchObject({ model: 'iris', outcome: 'ok' });
    expect(reporter.finished[0].seconds).toBeGreaterThan(0);
    expect(armRequests(catalog).reduce((sum, count) => sum + count, 0)).toBe(1);
  });

  it('fails its submit at once when the request is refused, and is reported like any request', async () => {
    const { reporter, tasks, catalog } = setUp();
    const malformed = { ...inferRequest('iris'), inputs: [{ ...inferRequest('iris').inputs[0], name: 'z' }] };
    await expect(tasks.submit(malformed)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringMatching(/unexpected input 'z'/) });
    await expect(tasks.submit(inferRequest('nope'))).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    // Labelled by model only once admitted, as ModelInfer's are; a refused request ran on no arm.
    expect(reporter.finished.map((entry) => [entry.model, entry.outcome])).toEqual([['unknown', 'INVALID_ARGUMENT'], ['unknown', 'NOT_FOUND']]);
    expect(armRequests(catalog)).toEqual([0, 0]);
  });

  it('counts an ended task in its arm as a failure when the executor fails it', async () => {
    const { host, catalog, tasks } = setUp();
    host.runBatch = async () => { throw new NexusError(ErrorCode.INTERNAL, 'kernel crashed'); };
    const submitted = await tasks.submit(inferRequest('iris'));
    await settle();
    expect(tasks.get(submitted.taskId)).toMatchObject({ state: TaskState.TASK_STATE_FAILED, errorCode: ErrorCode.INTERNAL });
    const report = catalog.experimentFor('iris').report('iris');
    expect(report.arms.reduce((sum, arm) => sum + arm.errors, 0)).toBe(1);
  });
});

describe('the request path', () => {
  it('refuses new requests once draining', async () => {
    const { requests, reporter } = setUp();
    await requests.drain(100);
    await expect(requests.handle(inferRequest('iris'), { callDeadlineMs: undefined })).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
    expect(reporter.finished.at(-1)).toMatchObject({ model: 'unknown', outcome: 'UNAVAILABLE' });
  });

  it('answers a call deadline itself, before the client would, and reports it as DEADLINE_EXCEEDED', async () => {
    const { host, requests, reporter } = setUp();
    await requests.handle(inferRequest('iris', '1'), { callDeadlineMs: undefined });
    // No executor slot frees up: the request waits in its queue until the deadline.
    host.hasCapacity = () => false;
    const started = Date.now();
    const callDeadlineMs = started + 60;
    await expect(requests.handle(inferRequest('iris', '1'), { callDeadlineMs })).rejects.toMatchObject({ code: ErrorCode.DEADLINE_EXCEEDED });
    expect(host.batches).toHaveLength(1);
    expect(reporter.finished.at(-1)).toMatchObject({ model: 'iris', outcome: 'DEADLINE_EXCEEDED' });
  });
});
