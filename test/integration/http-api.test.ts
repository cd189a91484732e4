/**
 * The router's HTTP port with fetch against a real executor, the Iris model and an FP16 model,
 * authentication on: every Open Inference Protocol route (health, metadata, readiness, JSON and
 * binary inference), the generate extension refusing a tensor model, the dashboard's JSON
 * (lineage, promote, rollback, history, an A/B split's figures, traffic, executors), CORS, keep-alive,
 * the HTTP metrics, and every error status the port answers: 400, 401, 403, 404, 413, 422, 429, 503.
 */
import { request as httpRequest, Agent } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainIrisModel } from '../../services/examples/index.ts';
import { GraphBuilder } from '../../services/onnx/index.ts';
import { DEFAULT_SERVING_CONFIG, startRouter, type RunningRouter } from '../../services/router/index.ts';
import { metricsRegistry } from '../../services/telemetry/metrics.ts';
import { startHttpCluster, type HttpCluster } from '../router/http/http-cluster.ts';

let cluster: HttpCluster;
let bare: RunningRouter;
let admin: string;
let reader: string;
let writer: string;
let limited: string;
let commit: string;
const iris = trainIrisModel();
const FLOWERS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]];

beforeAll(async () => {
  cluster = await startHttpCluster({ auth: true, config: { defaults: DEFAULT_SERVING_CONFIG, models: {}, budgets: { maxMessageBytes: 1 << 20 } } });
  commit = await cluster.store('iris', iris.onnx, { message: 'train iris' });
  await cluster.store('iris', iris.onnx, { message: 'train iris again' });
  const halves = new GraphBuilder('halves').input('h', 'FP16', [-1, 2]).initializer('one', 'FP16', [], Uint16Array.of(0x3c00))
    .node('Add', ['h', 'one'], ['h_plus_one']).output('h_plus_one', 'FP16', [-1, 2]);
  await cluster.store('halves', halves.toBytes({ opset: 21 }));
  [admin, reader, writer, limited] = await Promise.all([
    cluster.key('admin'), cluster.key('infer', { models: ['iris'] }), cluster.key('write'), cluster.key('infer', { limits: { requestsPerSecond: 0.2, burst: 1 } }),
  ]);
  // A router with no executor, so not ready, and CORS for one origin.
  bare = await startRouter({
    address: '127.0.0.1:0', insecure: true, registryAddress: cluster.registry.address, executorAddresses: [],
    http: { address: '127.0.0.1:0', corsOrigin: 'https://app.example.com' },
  });
}, 120_000);

afterAll(async () => {
  await bare?.shutdown(100);
  await cluster?.stop();
});

type Sent = { status: number; headers: Headers; json: any; bytes: Buffer };

async function call(path: string, { key = admin as string | null, method = 'GET', body, headers = {}, base = () => cluster.baseUrl }: {
  /** The API key sent; null for none. Default the admin key. */
  key?: string | null; method?: string; body?: unknown; headers?: Record<string, string>; base?: () => string;
} = {}): Promise<Sent> {
  const response = await fetch(`${base()}${path}`, {
    method,
    headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body !== undefined && !Buffer.isBuffer(body) ? { 'content-type': 'application/json' } : {}), ...headers },
    body: body === undefined ? undefined : Buffer.isBuffer(body) ? body : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  let json: any;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, json, bytes };
}

const inferBody = (rows = FLOWERS) => ({ id: 'req-1', inputs: [{ name: 'features', shape: [rows.length, 4], datatype: 'FP32', data: rows }] });

describe('the Open Inference Protocol over HTTP', () => {
  it('answers liveness and readiness without credentials, and 503 when no executor is connected', async () => {
    expect(await call('/v2/health/live', { key: null })).toMatchObject({ status: 200, json: { live: true } });
    expect(await call('/v2/health/ready', { key: null })).toMatchObject({ status: 200, json: { ready: true } });
    expect(await call('/v2/health/ready', { key: null, base: () => `http://${bare.httpAddress}` })).toMatchObject({ status: 503, json: { ready: false } });
  });

  it('answers 401 without credentials or with another scheme, in KServe\'s error shape', async () => {
    expect(await call('/v2', { key: null })).toMatchObject({
      status: 401, json: { error: "UNAUTHENTICATED: missing credentials: send 'authorization: Bearer <API key or JWT>'" },
    });
    const basic = await call('/v2', { key: null, headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.status).toBe(401);
    expect(basic.json.error).toContain("must be 'Bearer <API key or JWT>'");
    expect((await call('/v2', { key: 'nxk_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' })).status).toBe(401);
  });

  it('answers server and model metadata, by default version and by number, with the git commit', async () => {
    expect(await call('/v2')).toMatchObject({ status: 200, json: { name: 'nexusml', extensions: expect.arrayContaining(['binary_tensor_data', 'generate']) } });
    const metadata = await call('/v2/models/iris');
    expect(metadata).toMatchObject({
      status: 200,
      json: { name: 'iris', versions: ['1', '2'], platform: 'onnx', inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }], outputs: [{ name: 'probabilities', shape: [-1, 3] }] },
    });
    expect((await call('/v2/models/iris/versions/1')).json.properties).toMatchObject({ version: '1', git_commit: commit });
  });

  it('answers 404 for an unknown model or route and 403 for a model outside the key\'s globs', async () => {
    expect(await call('/v2/models/nope')).toMatchObject({ status: 404, json: { error: expect.stringMatching(/^NOT_FOUND: .*nope/) } });
    expect((await call('/v2/models/nope/infer', { method: 'POST', body: inferBody() })).status).toBe(404);
    expect(await call('/v2/nothing/here')).toMatchObject({ status: 404, json: { error: 'NOT_FOUND: no route GET /v2/nothing/here' } });
    expect(await call('/v2/models/halves', { key: reader })).toMatchObject({ status: 403, json: { error: "PERMISSION_DENIED: this credential may not use model 'halves'" } });
    expect((await call('/v2/models/iris', { key: reader })).status).toBe(200);
  });

  it('says a model is ready once it is loaded, and 503 for one that is not', async () => {
    await expect.poll(async () => (await call('/v2/models/iris/ready')).status, { timeout: 30_000 }).toBe(200);
    expect((await call('/v2/models/iris/versions/2/ready')).json).toEqual({ name: 'iris', version: '2', ready: true });
    expect(await call('/v2/models/nope/ready')).toMatchObject({ status: 503, json: { ready: false } });
  });

  it('runs JSON tensors (nested data) through the request path and answers its figures', async () => {
    const answer = await call('/v2/models/iris/infer', { method: 'POST', body: inferBody() });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toContain('application/json');
    expect(answer.json).toMatchObject({ model_name: 'iris', model_version: '2', id: 'req-1', outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [2, 3] }] });
    expect(answer.json.parameters).toMatchObject({ nexus_cache_hit: false, nexus_batch_size: expect.any(Number), nexus_gpu_us: expect.any(Number) });
    const expected = iris.predict(FLOWERS).flat();
    answer.json.outputs[0].data.forEach((value: number, index: number) => expect(value).toBeCloseTo(expected[index], 4));
    // A version by number and by route, and a flat list, answer the same.
    const flat = { inputs: [{ name: 'features', shape: [2, 4], datatype: 'FP32', data: FLOWERS.flat() }] };
    expect((await call('/v2/models/iris/versions/1/infer', { method: 'POST', body: flat })).json.model_version).toBe('1');
    expect((await call('/v2/models/iris/versions/latest/infer', { method: 'POST', body: flat })).json.outputs[0].data).toEqual(answer.json.outputs[0].data);
    // Triton's classification extension: the top classes as "score:index" strings.
    const classes = await call('/v2/models/iris/infer', { method: 'POST', body: { ...flat, outputs: [{ name: 'probabilities', parameters: { classification: 1 } }] } });
    expect(classes.json.outputs[0]).toMatchObject({ datatype: 'BYTES', shape: [2, 1], data: [expect.stringMatching(/^0\.99\d*:0/), expect.stringMatching(/^0\.99\d*:2/)] });
  });

  it('takes and answers binary tensors with Inference-Header-Content-Length', async () => {
    const header = Buffer.from(JSON.stringify({
      inputs: [{ name: 'features', shape: [2, 4], datatype: 'FP32', parameters: { binary_data_size: 32 } }],
      outputs: [{ name: 'probabilities', parameters: { binary_data: true } }],
    }));
    const body = Buffer.concat([header, Buffer.from(Float32Array.from(FLOWERS.flat()).buffer)]);
    const answer = await call('/v2/models/iris/infer', {
      method: 'POST', body, headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toBe('application/octet-stream');
    const jsonLength = Number(answer.headers.get('inference-header-content-length'));
    const json = JSON.parse(answer.bytes.subarray(0, jsonLength).toString());
    expect(json.outputs).toEqual([{ name: 'probabilities', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } }]);
    const values = new Float32Array(answer.bytes.subarray(jsonLength).buffer.slice(answer.bytes.byteOffset + jsonLength, answer.bytes.byteOffset + jsonLength + 24));
    const expected = iris.predict(FLOWERS).flat();
    values.forEach((value, index) => expect(value).toBeCloseTo(expected[index], 4));
  });

  it('carries FP16 only as binary data: 400 for an FP16 input in JSON, 422 for an FP16 output asked as JSON', async () => {
    const halfInput = { name: 'h', shape: [1, 2], datatype: 'FP16', parameters: { binary_data_size: 4 } };
    const send = (outputs: unknown) => {
      const header = Buffer.from(JSON.stringify({ inputs: [halfInput], outputs }));
      return call('/v2/models/halves/infer', {
        method: 'POST', body: Buffer.concat([header, Buffer.from(Uint16Array.of(0x3c00, 0x4000).buffer)]),
        headers: { 'inference-header-content-length': String(header.byteLength), 'content-type': 'application/octet-stream' },
      });
    };
    const binary = await send([{ name: 'h_plus_one', parameters: { binary_data: true } }]);
    expect(binary.status).toBe(200);
    const length = Number(binary.headers.get('inference-header-content-length'));
    expect([...new Uint16Array(binary.bytes.buffer.slice(binary.bytes.byteOffset + length, binary.bytes.byteOffset + length + 4))]).toEqual([0x4000, 0x4200]);
    const asJson = await send(undefined);
    expect(asJson.status).toBe(422);
    expect(asJson.json.error).toMatch(/^FAILED_PRECONDITION: output 'h_plus_one' is FP16.*binary_data/);
    const jsonInput = await call('/v2/models/halves/infer', { method: 'POST', body: { inputs: [{ name: 'h', shape: [1, 2], datatype: 'FP16', data: [1, 2] }] } });
    expect(jsonInput).toMatchObject({ status: 400, json: { error: expect.stringContaining("input 'h' is FP16") } });
  });

  it('answers 400 naming the field for malformed bodies and requests the signature refuses', async () => {
    const infer = (body: unknown) => call('/v2/models/iris/infer', { method: 'POST', body });
    expect((await infer('{"inputs": [')).json.error).toMatch(/^INVALID_ARGUMENT: the request body is not valid JSON/);
    expect((await infer({ inputs: [{ name: 'features', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }] })).json.error)
      .toBe("INVALID_ARGUMENT: input 'features' has shape [1,3], the model expects [-1,4] (-1 = any size)");
    expect((await infer({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP32', data: [1, 2, 3] }] })).json.error).toContain('data has 3 values');
    expect((await infer({ ...inferBody(), outputs: [{ name: 'logits' }] })).json.error).toContain("requested output 'logits' does not exist");
    expect((await infer({ ...inferBody(), parameters: { priority: 'urgent' } })).json.error).toContain('parameters.priority');
    expect((await infer('{"inputs": [], "__proto__": {"x": 1}}')).status).toBe(400);
    for (const body of ['{"inputs": [', { inputs: 'x' }]) expect((await infer(body)).status).toBe(400);
  });

  it('answers 413 for a body over the router\'s message budget', async () => {
    const answer = await call('/v2/models/iris/infer', { method: 'POST', body: Buffer.alloc((1 << 20) + 10, 32), headers: { 'content-type': 'application/json' } });
    expect(answer).toMatchObject({ status: 413, json: { error: expect.stringContaining('max_message_bytes') } });
  });

  it('answers 429 with Retry-After past a key\'s rate limit, as gRPC does', async () => {
    // One call from the sustained rate, one from the burst, then none for five seconds.
    for (let index = 0; index < 2; index++) expect((await call('/v2/models/iris/infer', { key: limited, method: 'POST', body: inferBody() })).status).toBe(200);
    const refused = await call('/v2/models/iris/infer', { key: limited, method: 'POST', body: inferBody() });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(refused.json.error).toMatch(/^RESOURCE_EXHAUSTED: rate limit of key:[0-9a-f]{12}: requests_per_second/);
  });

  it('refuses the generate extension on a tensor model, naming the input', async () => {
    const answer = await call('/v2/models/iris/generate', { method: 'POST', body: { text_input: 'hi', parameters: { max_tokens: 4 } } });
    expect(answer).toMatchObject({ status: 400, json: { error: expect.stringContaining("unexpected input 'text_input'") } });
    expect((await call('/v2/models/iris/generate', { method: 'POST', body: { prompt: 'hi' } })).json.error).toContain('prompt is not a field');
  });

  it('keeps connections alive between requests', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const get = () => new Promise<boolean>((resolve, reject) => {
      const request = httpRequest(`${cluster.baseUrl}/v2/health/live`, { agent }, (response) => {
        response.resume();
        response.on('end', () => resolve(request.reusedSocket));
      });
      request.on('error', reject);
      request.end();
    });
    expect(await get()).toBe(false);
    expect(await get()).toBe(true);
    agent.destroy();
  });
});

describe('the dashboard\'s JSON', () => {
  it('says who the key is and what it may do', async () => {
    expect((await call('/api/dashboard/session', { key: reader })).json).toMatchObject({ role: 'infer', canPromote: false, canRollback: false });
    expect((await call('/api/dashboard/session')).json).toMatchObject({ principal: expect.stringMatching(/^key:/), role: 'admin', canPromote: true, canRollback: true });
  });

  it('lists models with their lineage, only those the key may use', async () => {
    const all = await call('/api/dashboard/models');
    expect(all.json.models.map((model: { name: string }) => model.name)).toEqual(['halves', 'iris']);
    const models = await call('/api/dashboard/models', { key: reader });
    expect(models.json.models).toHaveLength(1);
    expect(models.json.models[0]).toMatchObject({ name: 'iris', latest: { version: 2, lineage: { branch: 'main', dirty: false, message: 'train iris again' } } });
    const detail = await call('/api/dashboard/models/iris');
    expect(detail.json.versions.map((version: { version: number; lineage: { commit: string } }) => [version.version, version.lineage.commit === commit])).toEqual([[2, false], [1, true]]);
  });

  it('promotes and rolls back an alias with the caller\'s role, and the history shows it', async () => {
    const promote = (key: string, target: string, extra = {}) => call('/api/dashboard/models/iris/aliases/staging/promote', { key, method: 'POST', body: { target, ...extra } });
    expect(await promote(reader, '1')).toMatchObject({ status: 403, json: { error: "PERMISSION_DENIED: SetAlias needs the 'write' role" } });
    expect((await promote(writer, 'three')).json.error).toMatch(/^INVALID_ARGUMENT/);
    expect((await promote(writer, '1')).json.move).toMatchObject({ toVersion: 1, revision: 1 });
    expect((await promote(writer, '2')).json.move).toMatchObject({ fromVersion: 1, toVersion: 2, revision: 2 });
    // A stale expectation is refused by the registry's compare-and-swap.
    expect((await promote(writer, '1', { expected_revision: 1 })).status).toBeGreaterThanOrEqual(400);
    const rollback = (key: string) => call('/api/dashboard/models/iris/aliases/staging/rollback', { key, method: 'POST', body: {} });
    expect(await rollback(writer)).toMatchObject({ status: 403, json: { error: "PERMISSION_DENIED: RollbackAlias needs the 'admin' role" } });
    expect((await rollback(admin)).json.move).toMatchObject({ fromVersion: 2, toVersion: 1, rollback: true });
    const history = await call('/api/dashboard/models/iris/aliases/staging/history');
    expect(history.json.moves.map((move: { revision: number; toVersion: number }) => [move.revision, move.toVersion])).toEqual([[3, 1], [2, 2], [1, 1]]);
  });

  it('shows an A/B split\'s arms with their figures, and 404 where there is none', async () => {
    expect((await call('/api/dashboard/models/iris/experiment?alias=staging')).status).toBe(404);
    await call('/api/dashboard/models/iris/aliases/production/promote', { method: 'POST', body: { target: '1=50,2=50', sticky: 'user' } });
    await expect.poll(async () => {
      await Promise.all(Array.from({ length: 8 }, (_, user) =>
        call('/v2/models/iris/infer', { method: 'POST', body: { ...inferBody(), parameters: { user: `u${user}` } } })));
      return (await call('/api/dashboard/models/iris/experiment?alias=production')).status;
    }, { timeout: 20_000 }).toBe(200);
    const report = (await call('/api/dashboard/models/iris/experiment?alias=production')).json;
    expect(report).toMatchObject({ modelName: 'iris', alias: 'production', stickyParameter: 'user', arms: [{ version: 1, weight: 50 }, { version: 2, weight: 50 }] });
    expect(report.arms[0].requests + report.arms[1].requests).toBeGreaterThan(0);
  });

  it('answers live traffic per model and the executors', async () => {
    const traffic = (await call('/api/dashboard/traffic')).json;
    const model = traffic.models.find((entry: { model: string }) => entry.model === 'iris');
    expect(model.points).toHaveLength(60);
    expect(model.points.reduce((sum: number, point: { requestsPerSecond: number }) => sum + point.requestsPerSecond, 0)).toBeGreaterThan(5);
    expect(model.batchSizes.some((bin: { batches: number }) => bin.batches > 0)).toBe(true);
    expect(model.points.some((point: { gpuMsPerBatch: number | null }) => point.gpuMsPerBatch !== null)).toBe(true);
    const { executors } = (await call('/api/dashboard/executors')).json;
    expect(executors).toHaveLength(1);
    expect(executors[0]).toMatchObject({ ready: true, slots: expect.any(Number), device: expect.any(String) });
    expect(executors[0].loaded.map((loaded: { key: string }) => loaded.key)).toContain('iris:2');
  });

  it('serves the page and its modules with a same-origin Content-Security-Policy', async () => {
    const page = await call('/', { key: null });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(page.bytes.toString()).toContain('/dashboard/app.js');
    expect((await call('/dashboard/vendor/uPlot.esm.js', { key: null })).headers.get('content-type')).toContain('text/javascript');
  });
});

describe('CORS and observability', () => {
  it('sends no CORS headers unless an origin is configured, and answers that origin\'s preflight', async () => {
    const plain = await call('/v2/health/live', { key: null, headers: { origin: 'https://app.example.com' } });
    expect(plain.headers.get('access-control-allow-origin')).toBeNull();
    const base = () => `http://${bare.httpAddress}`;
    const preflight = await call('/v2/models/iris/infer', { key: null, method: 'OPTIONS', base, headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    const other = await call('/v2/health/live', { key: null, base, headers: { origin: 'https://evil.example.com' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('counts requests by route pattern and status', async () => {
    const text = await metricsRegistry.metrics();
    expect(text).toMatch(/nexus_http_requests_total\{route="\/v2\/models\/:model\/infer",method="POST",status="200"\} \d+/);
    expect(text).toMatch(/nexus_http_requests_total\{route="\/v2\/models\/:model\/infer",method="POST",status="429"\} \d+/);
    expect(text).not.toContain('route="/v2/models/iris');
    // The HTTP requests went down the one request path: the inference metrics count them.
    expect(text).toMatch(/nexus_inference_requests_total\{model="iris",outcome="ok"\} \d+/);
  });
});
