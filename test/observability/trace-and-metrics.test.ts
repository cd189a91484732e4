/**
 * The services as separate processes (`nexus up`), exporting traces to a real OTLP receiver and
 * scraped by a real Prometheus: one request is one trace across router, executor and registry,
 * and Prometheus counts exactly the requests the test sent.
 */
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPCInferenceServiceClient, type ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { trainIrisModel } from '../../services/examples/iris/train.ts';
import { fp32Contents, REPO_ROOT, startNexusUp, type NexusUp } from '../integration/harness.ts';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver.ts';

let home: string;
let receiver: OtlpReceiver;
let up: NexusUp;
let client: GRPCInferenceServiceClient;
let adminKey: string;
let prometheus: ChildProcess | undefined;

const traceId = randomBytes(16).toString('hex');
const clientSpanId = randomBytes(8).toString('hex');

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'nexus-observe-'));
  receiver = await startOtlpReceiver();
  up = await startNexusUp(join(home, 'data'), {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  const path = join(home, 'iris.onnx');
  await writeFile(path, trainIrisModel().onnx);
  // NEXUS_HOME is the data dir: the CLI finds the admin key and CA that `nexus up` created there.
  await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), 'store', path, 'iris', '--registry', up.registry],
    { env: { ...process.env, NEXUS_HOME: join(home, 'data') } });
  adminKey = (await readFile(join(home, 'data', 'credentials', 'admin.key'), 'utf8')).trim();
  client = new GRPCInferenceServiceClient(up.router, credentials.createInsecure());
}, 120_000);

afterAll(async () => {
  client?.close();
  prometheus?.kill('SIGKILL');
  if (up) expect(await up.stop()).toBe(0);
  await receiver?.close();
  if (home) await rm(home, { recursive: true, force: true });
});

function infer(metadata = new Metadata()): Promise<ModelInferResponse> {
  metadata.set('authorization', `Bearer ${adminKey}`);
  return new Promise((resolve, reject) => client.modelInfer({
    modelName: 'iris', modelVersion: '', id: '', parameters: {}, outputs: [], rawInputContents: [],
    inputs: [{ name: 'features', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: fp32Contents([5.1, 3.5, 1.4, 0.2]) }],
  }, metadata, { deadline: Date.now() + 60_000 }, (error: ServiceError | null, response: ModelInferResponse) => (error ? reject(error) : resolve(response))));
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  for (const started = Date.now(); ; await new Promise((wake) => setTimeout(wake, 100))) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
  }
}

describe('tracing', () => {
  it('records one trace across the three services, with the right parents and links', async () => {
    const metadata = new Metadata();
    metadata.set('traceparent', `00-${traceId}-${clientSpanId}-01`);
    // The first request loads the model: its trace covers the registry lookups and the download.
    await infer(metadata);

    const inTrace = () => receiver.spans.filter((span) => span.traceId === traceId);
    const find = (service: string, name: string) => inTrace().find((span) => span.service === service && span.name === name);
    const spansOf = await waitFor('the spans of every service', () => {
      const needed = [['nexus-router', 'ModelInfer'], ['nexus-router', 'batch'], ['nexus-executor', 'execute_batch'],
        ['nexus-executor', 'load_model'], ['nexus-registry', 'DownloadArtifact'], ['nexus-registry', 'GetVersion']];
      return needed.every(([service, name]) => find(service, name)) ? inTrace() : undefined;
    });
    const one = (service: string, name: string): ReceivedSpan => find(service, name)!;

    const request = one('nexus-router', 'ModelInfer');
    expect(request.parentSpanId).toBe(clientSpanId);
    expect(one('nexus-router', 'validate').parentSpanId).toBe(request.spanId);
    expect(one('nexus-router', 'queue').parentSpanId).toBe(request.spanId);
    const batch = one('nexus-router', 'batch');
    expect(batch.parentSpanId).toBe(request.spanId);
    expect(batch.links).toContainEqual({ traceId, spanId: request.spanId });
    expect(batch.attributes['nexus.batch.rows']).toBe(1);
    const execute = one('nexus-executor', 'execute_batch');
    expect(execute.parentSpanId).toBe(batch.spanId);
    expect(Number(execute.attributes['nexus.gpu_ns'])).toBeGreaterThan(0);
    const load = one('nexus-executor', 'load_model');
    expect(load.parentSpanId).toBe(request.spanId);
    const download = one('nexus-executor', 'download_artifact');
    expect(download.parentSpanId).toBe(load.spanId);
    expect(one('nexus-registry', 'DownloadArtifact').parentSpanId).toBe(download.spanId);
    expect(one('nexus-registry', 'GetVersion').parentSpanId).toBe(request.spanId);
    expect(new Set(spansOf.map((span) => span.service))).toEqual(new Set(['nexus-router', 'nexus-executor', 'nexus-registry']));
  }, 60_000);
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('metrics', () => {
  it('lets Prometheus scrape all three services and count the requests sent', async () => {
    expect(Object.keys(up.metrics).sort()).toEqual(['executor-0', 'registry', 'router']);
    const port = await freePort();
    const config = join(home, 'prometheus.yml');
    await writeFile(config, [
      'global: { scrape_interval: 1s }',
      'scrape_configs:',
      '  - job_name: nexus',
      `    static_configs: [{ targets: [${Object.values(up.metrics).map((address) => `"${address}"`).join(', ')}] }]`,
    ].join('\n'));
    prometheus = spawn('prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${join(home, 'tsdb')}`,
      `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    prometheus.once('error', (error) => { throw new Error(`cannot run Debian's prometheus (apt-get install prometheus): ${error.message}`); });

    const sent = 25;
    for (let index = 0; index < sent; index++) await infer();
    const query = async (promql: string): Promise<number | undefined> => {
      const response = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(promql)}`).catch(() => undefined);
      if (!response?.ok) return undefined;
      const body = await response.json() as { data: { result: Array<{ value: [number, string] }> } };
      return body.data.result.length > 0 ? Number(body.data.result[0].value[1]) : undefined;
    };
    // The traced request above plus the ones just sent.
    const counted = await waitFor('Prometheus to count every request', async () => {
      const value = await query('sum(nexus_inference_requests_total{model="iris",outcome="ok"})');
      return value === sent + 1 ? value : undefined;
    }, 45_000);
    expect(counted).toBe(sent + 1);
    // The executor's and registry's own series are scraped too.
    expect(await waitFor('executor GPU time', () => query('sum(nexus_gpu_execution_seconds_count{model="iris"})'))).toBeGreaterThanOrEqual(sent);
    expect(await waitFor('registry RPCs', () => query('sum(nexus_rpc_requests_total{service="registry",method="UploadVersion",code="OK"})'))).toBe(1);
    // The model's bytes went up once (store) and down once (the executor's fetch).
    const modelBytes = trainIrisModel().onnx.byteLength;
    expect(await waitFor('registry bytes', () => query('nexus_registry_bytes_total{direction="up"}'))).toBe(modelBytes);
    expect(await waitFor('registry bytes', () => query('nexus_registry_bytes_total{direction="down"}'))).toBe(modelBytes);
  }, 90_000);
});
