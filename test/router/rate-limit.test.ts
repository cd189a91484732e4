/**
 * Per-principal rate limits through real gRPC clients, on a server that authenticates real API
 * keys: a key over its rate is refused RESOURCE_EXHAUSTED with `retry-after` and RetryInfo (and
 * counted in nexus_rate_limited_total), while another key's calls keep succeeding at their own
 * latency; a stream's refused message gets its own error_message and the stream goes on; a task
 * holds its key's place among calls in flight until it finishes.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateApiKey, type GeneratedKey } from '../../services/auth/api-keys.ts';
import type { ServiceAccess } from '../../services/auth/access.ts';
import { createAuthenticator } from '../../services/auth/authenticator.ts';
import { KeyDirectory } from '../../services/auth/key-directory.ts';
import { UNLIMITED, type PrincipalLimits } from '../../services/auth/principal.ts';
import { PrincipalLimiter } from '../../services/auth/rate-limits.ts';
import { ErrorCode, NexusError } from '../../services/domain/index.ts';
import {
  GRPCInferenceServiceClient, type ModelInferResponse, type ModelStreamInferResponse,
} from '../../services/protocol/generated/inference/grpc_service.ts';
import { KeyVerifier } from '../../services/protocol/generated/nexus/auth/v1/keys.ts';
import { TasksClient, TaskState, type TaskStatus } from '../../services/protocol/generated/nexus/router/v1/tasks.ts';
import { DEFAULT_SERVING_CONFIG } from '../../services/router/config/index.ts';
import { createInferenceService, createTaskService, GRPCInferenceServiceService, TasksService } from '../../services/router/grpc/index.ts';
import { ModelCatalog } from '../../services/router/models/index.ts';
import { createRequestPath, TaskStore } from '../../services/router/request-path/index.ts';
import { startGrpcServer, type RunningServer } from '../../services/rpc/server.ts';
import { createLogger } from '../../services/telemetry/logger.ts';
import { metricsRegistry, routerMetrics } from '../../services/telemetry/metrics.ts';
import { decodeRetryStatus } from '../rpc/status-details.ts';
import { deferred, doubled, FakeHost, FakeRegistry, inferRequest } from './fakes.ts';

const logger = createLogger('router');
const INFER = { role: 'infer' } as const;
const INFERENCE_ACCESS: ServiceAccess = {
  serverLive: { open: true }, serverReady: { open: true }, serverMetadata: INFER, modelMetadata: INFER, modelReady: INFER,
  modelInfer: INFER, modelStreamInfer: INFER,
};
const TASKS_ACCESS: ServiceAccess = { submitTask: INFER, getTask: INFER, cancelTask: INFER, watchTask: INFER };

/** A key with `limits`, as the registry's WatchKeys would send its record. */
function keyWith(limits: Partial<PrincipalLimits>): { key: GeneratedKey; verifier: KeyVerifier } {
  const key = generateApiKey();
  return {
    key,
    verifier: KeyVerifier.fromPartial({
      info: { id: key.id, name: key.id, role: 'infer', models: [], limits: { ...UNLIMITED, ...limits } },
      secretSha256: key.secretSha256,
    }),
  };
}

const limited = keyWith({ requestsPerSecond: 5, burst: 5 });
// Limited too, generously, so its calls take the same admission path as the limited key's.
const steady = keyWith({ requestsPerSecond: 100_000, maxConcurrent: 1_000 });
const streaming = keyWith({ requestsPerSecond: 2, burst: 1 });
const tasking = keyWith({ maxConcurrent: 1 });

const bearer = (key: GeneratedKey) => {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${key.key}`);
  return metadata;
};

let server: RunningServer;
let host: FakeHost;
let catalog: ModelCatalog;
let inference: GRPCInferenceServiceClient;
let tasks: TasksClient;

beforeAll(async () => {
  host = new FakeHost(true);
  catalog = new ModelCatalog(new FakeRegistry({ iris: 1 }), host, { config: { defaults: { ...DEFAULT_SERVING_CONFIG, maxQueueDelayMs: 0 }, models: {} } });
  const requests = createRequestPath(catalog);
  const limiter = new PrincipalLimiter({ onRefused: (principal, limit) => routerMetrics.rateLimited.inc({ principal, limit }) });
  const directory = new KeyDirectory();
  directory.replace([limited.verifier, steady.verifier, streaming.verifier, tasking.verifier]);
  server = await startGrpcServer({
    address: '127.0.0.1:0',
    auth: { authenticator: createAuthenticator({ apiKeys: directory }), logger },
    services: [{
      name: 'inference.GRPCInferenceService', protoFile: 'inference/grpc_service.proto', definition: GRPCInferenceServiceService,
      answersUndecodableMessages: ['modelStreamInfer'], access: INFERENCE_ACCESS,
      implementation: createInferenceService({ requests, catalog, isServerReady: () => true, logger, limiter }),
    }, {
      name: 'nexus.router.v1.Tasks', protoFile: 'nexus/router/v1/tasks.proto', definition: TasksService, access: TASKS_ACCESS,
      implementation: createTaskService(new TaskStore(requests.handle), logger, limiter),
    }],
  });
  inference = new GRPCInferenceServiceClient(server.address, credentials.createInsecure());
  tasks = new TasksClient(server.address, credentials.createInsecure());
});

afterAll(async () => {
  inference?.close();
  tasks?.close();
  await server?.shutdown(1_000);
  catalog?.close(new NexusError(ErrorCode.UNAVAILABLE, 'test over'));
});

type Outcome = { ok: true; ms: number } | { ok: false; ms: number; error: ServiceError };

function infer(key: GeneratedKey): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    inference.modelInfer(inferRequest('iris'), bearer(key), (error: ServiceError | null, _response?: ModelInferResponse) => {
      const ms = performance.now() - started;
      resolve(error ? { ok: false, ms, error } : { ok: true, ms });
    });
  });
}

async function sequential(key: GeneratedKey, count: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  for (let index = 0; index < count; index += 1) outcomes.push(await infer(key));
  return outcomes;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));

function submit(key: GeneratedKey): Promise<TaskStatus> {
  return new Promise((resolve, reject) => {
    tasks.submitTask({ request: inferRequest('iris') }, bearer(key), (error, response) => (error ? reject(error) : resolve(response!.status!)));
  });
}

describe('per-principal rate limits over gRPC', () => {
  it('refuses a key over its rate with retry-after and RetryInfo, while another key keeps its own latency', async () => {
    await sequential(steady.key, 10); // the model loads, the connection warms
    const baseline = await sequential(steady.key, 40);
    expect(baseline.every((outcome) => outcome.ok)).toBe(true);

    // The limited key sends about 500 calls a second, 100 times its rate, while the steady key measures again.
    const flood: Outcome[] = [];
    let flooding = true;
    const floodStarted = performance.now();
    const floodDone = (async () => {
      while (flooding) {
        flood.push(...await Promise.all(Array.from({ length: 5 }, () => infer(limited.key))));
        await sleep(10);
      }
    })();
    await sleep(50); // past the limited key's burst
    const underLoad = await sequential(steady.key, 80);
    flooding = false;
    await floodDone;
    const floodSeconds = (performance.now() - floodStarted) / 1000;

    const refusals = flood.filter((outcome): outcome is Extract<Outcome, { ok: false }> => !outcome.ok);
    const admitted = flood.length - refusals.length;
    expect(refusals.length).toBeGreaterThan(0);
    // 5 a second in whole windows, plus the burst of 5 once.
    expect(admitted).toBeLessThanOrEqual(5 * Math.ceil(floodSeconds + 1) + 5);
    expect(admitted).toBeGreaterThanOrEqual(10);
    for (const { error } of refusals) {
      expect(error.code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
      expect(error.details).toMatch(new RegExp(`^rate limit of key:${limited.key.id}: requests_per_second \\(5, burst 5\\); retry in (0\\.\\d|1) s$`));
      expect(error.metadata.get('retry-after')).toEqual(['1']);
      const [detailsBytes] = error.metadata.get('grpc-status-details-bin') as Buffer[];
      const status = decodeRetryStatus(detailsBytes);
      expect(status.code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
      expect(status.message).toBe(error.details);
      expect(status.details).toHaveLength(1);
      expect(status.details[0].type_url).toBe('type.googleapis.com/google.rpc.RetryInfo');
      const delayMs = status.details[0].retry_delay.seconds * 1000 + status.details[0].retry_delay.nanos / 1e6;
      expect(delayMs).toBeGreaterThan(0);
      expect(delayMs).toBeLessThanOrEqual(1000);
    }

    // The steady key was never refused, and its median latency stayed near its own.
    expect(underLoad.filter((outcome) => !outcome.ok)).toEqual([]);
    const baselineMs = median(baseline.map((outcome) => outcome.ms));
    const underLoadMs = median(underLoad.map((outcome) => outcome.ms));
    expect(underLoadMs).toBeLessThan(3 * baselineMs + 5);

    const counted = await metricsRegistry.getSingleMetricAsString('nexus_rate_limited_total');
    expect(counted).toContain(`nexus_rate_limited_total{principal="key:${limited.key.id}",limit="requests_per_second"} ${refusals.length}`);
    expect(counted).not.toContain(limited.key.key);
    expect(counted).not.toContain(steady.key.id);
  });

  it("answers a stream's refused message with its own error_message and goes on with the stream", async () => {
    const responses: ModelStreamInferResponse[] = [];
    const stream = inference.modelStreamInfer(bearer(streaming.key));
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('data', (response: ModelStreamInferResponse) => responses.push(response));
      stream.on('error', reject);
      stream.on('end', () => resolve());
    });
    for (let index = 0; index < 10; index += 1) stream.write({ ...inferRequest('iris'), id: `m${index}` });
    stream.end();
    await ended;
    expect(responses).toHaveLength(10);
    const refused = responses.filter((response) => response.errorMessage !== '');
    // 2 a second and a burst of 1; the messages arrive within one window, or two at most.
    expect(responses.length - refused.length).toBeGreaterThanOrEqual(3);
    expect(responses.length - refused.length).toBeLessThanOrEqual(5);
    for (const response of refused) {
      expect(response.errorMessage).toMatch(new RegExp(`^RESOURCE_EXHAUSTED: rate limit of key:${streaming.key.id}: requests_per_second \\(2, burst 1\\); retry in`));
      expect(response.inferResponse?.id).toMatch(/^m\d$/);
    }
  });

  it('counts a task against calls in flight until it finishes', async () => {
    const gate = deferred<void>();
    host.runBatch = async (batch) => {
      await gate.promise;
      return doubled(batch);
    };
    try {
      const first = await submit(tasking.key);
      expect(first.state).toBe(TaskState.TASK_STATE_QUEUED);
      const refusal = await submit(tasking.key).then(() => undefined, (error: ServiceError) => error);
      expect(refusal?.code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
      expect(refusal?.details).toBe(`rate limit of key:${tasking.key.id}: max_concurrent (1); retry in 0.1 s`);
      expect(refusal?.metadata.get('retry-after')).toEqual(['1']);
      gate.resolve();
      const finished = await new Promise<TaskStatus>((resolve, reject) => {
        const watch = tasks.watchTask({ taskId: first.taskId }, bearer(tasking.key));
        watch.on('data', ({ status }: { status: TaskStatus }) => {
          if (status.state !== TaskState.TASK_STATE_QUEUED) resolve(status);
        });
        watch.on('error', reject);
      });
      expect(finished.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
      const next = await submit(tasking.key);
      expect(next.state).not.toBe(TaskState.TASK_STATE_FAILED);
    } finally {
      host.runBatch = async (batch) => doubled(batch);
    }
  });
});
