/**
 * What grpcurl and Kubernetes need from every service: server reflection (list services, fetch
 * the descriptors of a symbol and of its imports) and grpc.health.v1.
 */
import { credentials, loadPackageDefinition, type GrpcObject, type ServiceClientConstructor } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from './harness.ts';

const require = createRequire(import.meta.url);
const reflectionProto = require.resolve('@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto');
const loaded = loadPackageDefinition(loadSync([reflectionProto, healthProtoPath], { keepCase: true, longs: String, enums: String, defaults: true })) as GrpcObject;
const ReflectionClient = ((loaded.grpc as GrpcObject).reflection as GrpcObject).v1 as GrpcObject;
const HealthClient = ((loaded.grpc as GrpcObject).health as GrpcObject).v1 as GrpcObject;

let cluster: Cluster;
const services: Record<string, () => string> = {
  router: () => cluster.router.address,
  registry: () => cluster.registry.address,
  executor: () => cluster.executors[0].address,
};
const serviceNames: Record<string, string> = {
  router: 'inference.GRPCInferenceService',
  registry: 'nexus.registry.v1.Registry',
  executor: 'nexus.executor.v1.Executor',
};

beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(async () => {
  await cluster?.stop();
});

/** One request on the reflection stream, one response back. */
function reflect(address: string, request: Record<string, string>): Promise<any> {
  const client = new (ReflectionClient.ServerReflection as ServiceClientConstructor)(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const stream = (client as unknown as { ServerReflectionInfo(): any }).ServerReflectionInfo();
    stream.on('data', (response: unknown) => {
      resolve(response);
      stream.end();
      client.close();
    });
    stream.on('error', reject);
    stream.write(request);
  });
}

function healthCheck(address: string, service: string): Promise<string> {
  const client = new (HealthClient.Health as ServiceClientConstructor)(address, credentials.createInsecure());
  return new Promise((resolve, reject) => {
    (client as unknown as { Check: Function }).Check({ service }, (error: Error | null, response: { status: string }) => {
      client.close();
      if (error) reject(error);
      else resolve(response.status);
    });
  });
}

describe.each(Object.keys(services))('the %s', (name) => {
  it('lists its services through reflection, health included', async () => {
    const response = await reflect(services[name](), { list_services: '' });
    const listed = response.list_services_response.service.map((service: { name: string }) => service.name);
    expect(listed).toContain(serviceNames[name]);
    expect(listed).toContain('grpc.health.v1.Health');
  });

  it('returns the descriptor of its service, and of each file it imports', async () => {
    const response = await reflect(services[name](), { file_containing_symbol: serviceNames[name] });
    const files: Buffer[] = response.file_descriptor_response.file_descriptor_proto;
    expect(files.length).toBeGreaterThan(0);
    expect(Buffer.concat(files).toString('latin1')).toContain(serviceNames[name].split('.').at(-1));
    if (name === 'executor') {
      // The executor's messages use the registry's types: grpcurl must get those descriptors too.
      expect(files.length).toBeGreaterThan(1);
      const imported = await reflect(services[name](), { file_containing_symbol: 'nexus.registry.v1.ModelVersion' });
      expect(Buffer.concat(imported.file_descriptor_response.file_descriptor_proto).toString('latin1')).toContain('ModelVersion');
    }
  });

  it('reports SERVING overall and for its service', async () => {
    expect(await healthCheck(services[name](), '')).toBe('SERVING');
    expect(await healthCheck(services[name](), serviceNames[name])).toBe('SERVING');
  });
});
