/**
 * A client in another language over TLS with a token: Python's grpcio, with stubs generated from
 * our proto/ (test/python/oip_client.py), trusts the deployment's CA, sends its API key as
 * `authorization: Bearer …` metadata to a router whose public port serves TLS with the
 * certificate and key the --tls-cert/--tls-key flags name, and gets the Iris model's answer; the
 * same call without a token, or with a wrong one, is UNAUTHENTICATED, and a plaintext client
 * never reaches the port.
 */
import { credentials, Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SERVICE_IDENTITIES } from '../../services/auth/roles.ts';
import { trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { startExecutor, type RunningExecutor } from '../../services/executor/service/index.ts';
import { GRPCInferenceServiceClient } from '../../services/protocol/generated/inference/grpc_service.ts';
import { UploadHeader } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { startRouter, type RunningRouter } from '../../services/router/index.ts';
import { channelCredentials, publicServerCredentials, serverCredentials } from '../../services/tls/credentials.ts';
import { ensureServiceMaterial, loadServiceMaterial } from '../../services/tls/material.ts';
import { REPO_ROOT } from './harness.ts';

/** Debian's python3 has grpcio and grpcio-tools (python3-grpcio, python3-grpc-tools); another python3 on PATH may not. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const flowers = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]];

/**
 * Calls ModelInfer on iris over TLS (argv: address, CA file) with the token in NEXUS_TEST_TOKEN,
 * then without one and with a wrong one; prints what each got as JSON.
 */
const PYTHON_CLIENT = `
import json, os, sys
import grpc
sys.path.insert(0, ${JSON.stringify(join(REPO_ROOT, 'test/python'))})
import oip_client

address, ca_file = sys.argv[1], sys.argv[2]
flowers = ${JSON.stringify(flowers.flat())}
stubs = oip_client.generate_stubs()
pb = stubs.messages

def request():
    tensor = pb.ModelInferRequest.InferInputTensor(name="features", datatype="FP32", shape=[2, 4])
    tensor.contents.fp32_contents.extend(flowers)
    return pb.ModelInferRequest(model_name="iris", inputs=[tensor])

def refusal(client, metadata):
    try:
        client.ModelInfer(request(), metadata=metadata, timeout=10)
        return {"code": "OK"}
    except grpc.RpcError as error:
        return {"code": error.code().name, "details": error.details()}

channel_credentials = grpc.ssl_channel_credentials(root_certificates=open(ca_file, "rb").read())
with grpc.secure_channel(address, channel_credentials) as channel:
    client = stubs.services.GRPCInferenceServiceStub(channel)
    response = client.ModelInfer(request(), metadata=[("authorization", "Bearer " + os.environ["NEXUS_TEST_TOKEN"])], timeout=30)
    print(json.dumps({
        "model_name": response.model_name,
        "shape": list(response.outputs[0].shape),
        "values": oip_client.output_values(response, 0),
        "live_without_token": client.ServerLive(pb.ServerLiveRequest(), timeout=10).live,
        "anonymous": refusal(client, None),
        "wrong_key": refusal(client, [("authorization", "Bearer nxk_000000000000_" + "A" * 43)]),
    }))
`;

let dir: string;
let iris: TrainedIrisModel;
let registry: RunningRegistry;
let executor: RunningExecutor;
let router: RunningRouter;
let key: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-security-python-'));
  const tlsDir = join(dir, 'tls');
  await ensureServiceMaterial(tlsDir, SERVICE_IDENTITIES);
  const material = Object.fromEntries(await Promise.all(SERVICE_IDENTITIES.map(async (service) => [service, await loadServiceMaterial(tlsDir, service)] as const)));
  // The service links as the mains make them: the router and the executor reach the authenticating registry by their certificates.
  registry = await startRegistry({ dataDir: join(dir, 'registry'), auth: {}, credentials: serverCredentials(material.registry, { clientCertificate: 'optional' }) });
  executor = await startExecutor({ registryAddress: registry.address, cacheDir: join(dir, 'cache'), registryCredentials: channelCredentials(material.executor, 'registry') });
  // What --tls-cert and --tls-key make of their files: here the router's own certificate, which names 127.0.0.1.
  router = await startRouter({
    address: '127.0.0.1:0', registryAddress: registry.address, executorAddresses: [executor.address],
    registryCredentials: channelCredentials(material.router, 'registry'),
    credentials: publicServerCredentials(join(tlsDir, 'router.crt'), join(tlsDir, 'router.key')),
  });
  iris = trainIrisModel();
  const sha256 = createHash('sha256').update(iris.onnx).digest('hex');
  await registry.registry.upload(UploadHeader.fromPartial({ modelName: 'iris', format: 'onnx', creator: 'test', sha256, sizeBytes: iris.onnx.byteLength }),
    (async function* () { yield iris.onnx; })());
  key = (await registry.keys.create({ name: 'python', role: 'infer', models: ['iris'], limits: { requestsPerSecond: 0, burst: 0, rowsPerSecond: 0, dailyQuota: 0, maxConcurrent: 0 } }, 'test')).key;
});

afterAll(async () => {
  await router?.shutdown(100);
  await executor?.shutdown(100);
  await registry?.shutdown(100);
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** ModelReady over TLS with the key, until the router has the key and the model is loaded. */
async function waitUntilReady(): Promise<void> {
  const client = new GRPCInferenceServiceClient(router.address, credentials.createSsl(await readFile(join(dir, 'tls', 'ca.crt'))));
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${key}`);
  try {
    for (const started = Date.now(); ;) {
      const answer = await new Promise<ServiceError | boolean>((resolve) =>
        client.modelReady({ name: 'iris', version: '' }, metadata, (error, response) => resolve(error ?? response.ready)));
      if (answer === true) return;
      if (Date.now() - started > 30_000) throw new Error(`iris did not become ready over TLS within 30 s (last answer: ${answer === false ? 'not ready' : answer.details})`);
      await new Promise((wake) => setTimeout(wake, 50));
    }
  } finally {
    client.close();
  }
}

it('has grpcio and grpcio-tools to run with (deploy/bootstrap.sh installs them)', async () => {
  await expect(promisify(execFile)(PYTHON, ['-c', 'import grpc, grpc_tools'])).resolves.toBeDefined();
});

it('calls ModelInfer over TLS with its key and gets the model\'s answer; without a key or with a wrong one it is refused', async () => {
  await waitUntilReady();
  const { stdout } = await promisify(execFile)(PYTHON, ['-c', PYTHON_CLIENT, router.address, join(dir, 'tls', 'ca.crt')], {
    env: { ...process.env, NEXUS_TEST_TOKEN: key },
  });
  const result = JSON.parse(stdout);
  expect(result).toMatchObject({ model_name: 'iris', shape: [2, 3], live_without_token: true });
  const expected = iris.predict(flowers).flat();
  (result.values as number[]).forEach((value, index) => expect(value).toBeCloseTo(expected[index], 4));
  expect(result.anonymous).toEqual({ code: 'UNAUTHENTICATED', details: "missing credentials: send 'authorization: Bearer <API key or JWT>'" });
  expect(result.wrong_key).toEqual({ code: 'UNAUTHENTICATED', details: 'invalid credentials' });
});

it('never serves a plaintext client on the TLS port', async () => {
  const client = new GRPCInferenceServiceClient(router.address, credentials.createInsecure());
  const failure = await new Promise<ServiceError | null>((resolve) =>
    client.serverLive({}, new Metadata(), { deadline: Date.now() + 5_000 }, (error) => resolve(error)));
  client.close();
  expect(failure?.code).toBe(status.UNAVAILABLE);
});
