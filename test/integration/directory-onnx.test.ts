/**
 * An ONNX model stored as a directory (model.onnx with its weights in external data files)
 * through a real registry, router and executor: `nexus store` of the directory, inference
 * through the router matching onnxruntime on the same weights inlined, `nexus infer`, the
 * staging gone after the load; a directory that is not one ONNX model (two .onnx files without
 * an entry tag, an ONNX model beside a safetensors checkpoint) refused at store, and one whose
 * tensors name files it does not hold, or climb out of it, refused at load with its code.
 */
import type { ServiceError } from '@grpc/grpc-js';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInferResponse } from '../../services/protocol/generated/inference/grpc_service.ts';
import { GraphBuilder } from '../../services/onnx/builder.ts';
import type { HostTensor } from '../../services/onnx/model.ts';
import { ModelProto, TensorProto_DataLocation } from '../../services/protocol/generated/onnx/onnx.ts';
import { expectClose, randomTensor, runOrt } from '../executor/numerics/ort-reference.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

const IN = 24;
const HIDDEN = 16;
const OUT = 3;

let cluster: Cluster;
beforeAll(async () => {
  cluster = await startCluster();
});
afterAll(() => cluster?.stop());

/** An MLP with random weights, as an inline model and as its initializers' bytes. */
function mlp() {
  const weights = { w1: randomTensor([IN, HIDDEN], 0.3), b1: randomTensor([HIDDEN], 0.1), w2: randomTensor([HIDDEN, OUT], 0.3), b2: randomTensor([OUT], 0.1) };
  const graph = new GraphBuilder('directory_mlp').input('x', 'FP32', [-1, IN]);
  for (const [name, tensor] of Object.entries(weights)) graph.initializer(name, 'FP32', tensor.shape, tensor.data);
  graph.node('MatMul', ['x', 'w1'], ['h']).node('Add', ['h', 'b1'], ['hb']).node('Relu', ['hb'], ['r'])
    .node('MatMul', ['r', 'w2'], ['o']).node('Add', ['o', 'b2'], ['y']).output('y', 'FP32', [-1, OUT]);
  return { model: graph.toModel({ opset: 17 }), weights };
}

const bytesOf = (tensor: HostTensor) => new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);

/**
 * Writes a directory `name` holding `model` with its w1, b1 and w2 in weights.bin and b2 in
 * data/b2.bin (or where `locations` says), plus a README the model never names; returns the
 * directory and the inline model's bytes (the reference).
 */
function writeDirectory(name: string, locations: Partial<Record<'w2' | 'b2', string>> = {}) {
  const { model, weights } = mlp();
  const inline = ModelProto.encode(model).finish();
  const directory = join(cluster.dataDir, name);
  mkdirSync(join(directory, 'data'), { recursive: true });
  const packed = Buffer.concat([bytesOf(weights.w1), bytesOf(weights.b1), bytesOf(weights.w2)]);
  const entries: Record<string, Record<string, string>> = {
    w1: { location: 'weights.bin', offset: '0', length: String(weights.w1.data.byteLength) },
    b1: { location: 'weights.bin', offset: String(weights.w1.data.byteLength), length: String(weights.b1.data.byteLength) },
    w2: { location: locations.w2 ?? './weights.bin', offset: String(weights.w1.data.byteLength + weights.b1.data.byteLength) },
    b2: { location: locations.b2 ?? 'data/b2.bin' },
  };
  for (const tensor of model.graph!.initializer) {
    tensor.rawData = new Uint8Array();
    tensor.dataLocation = TensorProto_DataLocation.EXTERNAL;
    tensor.externalData = Object.entries(entries[tensor.name]).map(([key, value]) => ({ key, value }));
  }
  writeFileSync(join(directory, 'model.onnx'), ModelProto.encode(model).finish());
  writeFileSync(join(directory, 'weights.bin'), packed);
  writeFileSync(join(directory, 'data', 'b2.bin'), bytesOf(weights.b2));
  writeFileSync(join(directory, 'README.md'), '# a directory model\n');
  return { directory, inline };
}

async function store(directory: string, name: string, ...flags: string[]): Promise<void> {
  const stored = await cluster.cli(['store', directory, name, '--allow-dirty', '--json', ...flags], cluster.dataDir);
  expect(stored.code, stored.stderr).toBe(0);
}

function inferRows(name: string, input: HostTensor): Promise<ModelInferResponse> {
  return cluster.infer({ modelName: name, inputs: [{ name: 'x', datatype: 'FP32', shape: input.shape, parameters: {}, contents: fp32Contents([...input.data as Float32Array]) }] });
}

function outputOf(response: ModelInferResponse): HostTensor {
  const output = response.outputs[0];
  const data = response.rawOutputContents.length > 0
    ? new Float32Array(new Uint8Array(response.rawOutputContents[0]).slice().buffer)
    : Float32Array.from(output.contents!.fp32Contents);
  return { datatype: 'FP32', shape: output.shape.map(Number), data };
}

/** The gRPC error a first inference of `name` fails with. */
async function loadRefusal(name: string): Promise<ServiceError> {
  const input = randomTensor([1, IN]);
  const error = await inferRows(name, input).then(() => undefined, (thrown: ServiceError) => thrown);
  expect(error, `${name} loaded`).toBeDefined();
  return error!;
}

describe('an ONNX model stored as a directory with external data', () => {
  it('stores with nexus store, runs through the router like onnxruntime, and answers nexus infer', async () => {
    const { directory, inline } = writeDirectory('mlp-dir');
    await store(directory, 'mlp-dir');
    for (const rows of [1, 5]) {
      const input = randomTensor([rows, IN]);
      const [response, reference] = await Promise.all([inferRows('mlp-dir', input), runOrt(inline, new Map([['x', input]]))]);
      expectClose('y', outputOf(response), reference.get('y')!);
    }
    const printed = await cluster.cli(['infer', 'mlp-dir', '--data', JSON.stringify([Array.from({ length: IN }, () => 0.5)])], cluster.dataDir);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toContain('y');
    // The load staged model.onnx's two weight files (not the README) and removed the staging.
    const cacheDir = join(cluster.dataDir, 'cache-0');
    expect(readdirSync(join(cacheDir, 'staged'))).toEqual([]);
    const stats = await cluster.executorStats();
    expect(stats.models.map((entry) => entry.model!.modelName)).toContain('mlp-dir');
  });

  it('loads the entry point a tag names when the root holds two .onnx files; without it nexus store is refused FAILED_PRECONDITION', async () => {
    const { directory, inline } = writeDirectory('two-models');
    writeFileSync(join(directory, 'other.onnx'), inline);
    const untagged = await cluster.cli(['store', directory, 'two-untagged', '--allow-dirty'], cluster.dataDir);
    expect(untagged.code).not.toBe(0);
    expect(untagged.stderr).toContain("2 ONNX models at its root ('model.onnx', 'other.onnx'); name the entry point with the tag nexus.onnx_entry");
    expect(untagged.stderr).toContain('FAILED_PRECONDITION');

    await store(directory, 'two-tagged', '--tag', 'nexus.onnx_entry=other.onnx');
    const input = randomTensor([2, IN]);
    const [response, reference] = await Promise.all([inferRows('two-tagged', input), runOrt(inline, new Map([['x', input]]))]);
    expectClose('y', outputOf(response), reference.get('y')!);
  });

  it('refuses to store a directory holding an ONNX model beside a safetensors checkpoint, naming both', async () => {
    const { directory } = writeDirectory('both');
    writeFileSync(join(directory, 'config.json'), '{}');
    // The smallest valid safetensors file: an 8-byte header length, then an empty JSON header.
    const header = Buffer.from('{}      ');
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.byteLength));
    writeFileSync(join(directory, 'model.safetensors'), Buffer.concat([length, header]));
    const both = await cluster.cli(['store', directory, 'both', '--allow-dirty'], cluster.dataDir);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain("both an ONNX model ('model.onnx') and a safetensors checkpoint ('model.safetensors')");
  });

  it('refuses a location the version does not hold (FAILED_PRECONDITION) and one that climbs out (INVALID_ARGUMENT), naming the tensor', async () => {
    const missing = writeDirectory('missing-file', { b2: 'data/absent.bin' });
    await store(missing.directory, 'missing-file');
    const absent = await loadRefusal('missing-file');
    expect(absent.code).toBe(9);
    expect(absent.message).toContain("tensor 'b2': external data file 'data/absent.bin'");

    const climbing = writeDirectory('climbing', { w2: '../climbing/weights.bin' });
    await store(climbing.directory, 'climbing');
    const outside = await loadRefusal('climbing');
    expect(outside.code).toBe(3);
    expect(outside.message).toContain("tensor 'w2'");
    expect(outside.message).toContain("'..' component");
  });
});
