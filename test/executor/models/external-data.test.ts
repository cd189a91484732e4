/**
 * A directory model whose weights live in external files (ONNX external data): the model
 * compiled from its directory matches onnxruntime on the same weights inlined, and every
 * location or range that would read outside the model's files is refused naming its tensor,
 * before anything is read.
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import { ModelProto, TensorProto_DataLocation } from '../../../services/protocol/generated/onnx/onnx.ts';
import { expectClose, randomTensor, runOrt } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
let root: string;
beforeAll(async () => { gpu = await openGpu(); root = mkdtempSync(join(tmpdir(), 'nexus-external-')); });
afterAll(() => { gpu?.destroy(); rmSync(root, { recursive: true, force: true }); });

const IN = 37;
const HIDDEN = 19;
const OUT = 5;

/** An MLP (MatMul + Add, Relu, MatMul + Add); its four weights' bytes, by name. */
function mlp() {
  const weights = {
    w1: randomTensor([IN, HIDDEN], 0.3), b1: randomTensor([HIDDEN], 0.1),
    w2: randomTensor([HIDDEN, OUT], 0.3), b2: randomTensor([OUT], 0.1),
  };
  const graph = new GraphBuilder('external_mlp').input('x', 'FP32', [-1, IN]);
  for (const [name, tensor] of Object.entries(weights)) graph.initializer(name, 'FP32', tensor.shape, tensor.data);
  graph.node('MatMul', ['x', 'w1'], ['h']).node('Add', ['h', 'b1'], ['hb']).node('Relu', ['hb'], ['r'])
    .node('MatMul', ['r', 'w2'], ['o']).node('Add', ['o', 'b2'], ['y']).output('y', 'FP32', [-1, OUT]);
  return { model: graph.toModel({ opset: 17 }), weights };
}

type Entries = Record<string, string>;
type CompileOptions = NonNullable<Parameters<typeof compileOnnxModel>[2]>;

/**
 * Writes `model` into a fresh directory with the initializers named in `external` moved out to
 * the entries given (the file contents written by the caller); returns the directory and the
 * stripped model's bytes.
 */
function directoryModel(name: string, model: ModelProto, external: Record<string, Entries>): { directory: string; bytes: Uint8Array } {
  const directory = join(root, name);
  mkdirSync(directory, { recursive: true });
  const stripped = ModelProto.fromPartial(structuredClone(model));
  for (const tensor of stripped.graph!.initializer) {
    const entries = external[tensor.name];
    if (!entries) continue;
    tensor.rawData = new Uint8Array();
    tensor.dataLocation = TensorProto_DataLocation.EXTERNAL;
    tensor.externalData = Object.entries(entries).map(([key, value]) => ({ key, value }));
  }
  const bytes = ModelProto.encode(stripped).finish();
  writeFileSync(join(directory, 'model.onnx'), bytes);
  return { directory, bytes };
}

const bytesOf = (data: Float32Array) => new Uint8Array(data.buffer, data.byteOffset, data.byteLength);

async function refusal(bytes: Uint8Array, options: CompileOptions): Promise<NexusError> {
  const error = await compileOnnxModel(gpu, bytes, { isolate: false, ...options }).then((model) => { model.dispose(); return undefined; }, (thrown: unknown) => thrown);
  expect(error).toBeInstanceOf(NexusError);
  return error as NexusError;
}

describe('ONNX external data in a directory model', () => {
  it('reads weights at offsets of one file and a whole file in a subdirectory, and matches onnxruntime', async () => {
    const { model, weights } = mlp();
    const inline = ModelProto.encode(model).finish();
    // w1 at offset 0, b1 after 3 bytes of padding, w2 after it; b2 alone in data/b2.bin (no length: the whole file).
    const w1 = bytesOf(weights.w1.data as Float32Array);
    const b1 = bytesOf(weights.b1.data as Float32Array);
    const w2 = bytesOf(weights.w2.data as Float32Array);
    const packed = new Uint8Array(w1.length + 3 + b1.length + w2.length);
    packed.set(w1, 0);
    packed.set(b1, w1.length + 3);
    packed.set(w2, w1.length + 3 + b1.length);
    const { directory, bytes } = directoryModel('good', model, {
      w1: { location: 'weights.bin', offset: '0', length: String(w1.length) },
      b1: { location: 'weights.bin', offset: String(w1.length + 3), length: String(b1.length) },
      w2: { location: 'weights.bin', offset: String(w1.length + 3 + b1.length), length: String(w2.length) },
      b2: { location: 'data/b2.bin' },
    });
    writeFileSync(join(directory, 'weights.bin'), packed);
    mkdirSync(join(directory, 'data'));
    writeFileSync(join(directory, 'data', 'b2.bin'), bytesOf(weights.b2.data as Float32Array));
    expect(bytes.byteLength).toBeLessThan(inline.byteLength / 4);

    // Isolated, as the service compiles: the worker checks the model with its weights read in.
    const compiled = await compileOnnxModel(gpu, bytes, { modelDirectory: directory });
    try {
      const inlined = await compileOnnxModel(gpu, inline, { isolate: false });
      expect(compiled.weightBytes).toBe(inlined.weightBytes);
      inlined.dispose();
      for (const batch of [1, 6]) {
        const feeds = new Map([['x', randomTensor([batch, IN])]]);
        const [ours, reference] = await Promise.all([compiled.run(feeds), runOrt(inline, feeds)]);
        expectClose('y', ours.outputs.get('y'), reference.get('y')!);
      }
    } finally {
      compiled.dispose();
    }
  });

  it('is INVALID_ARGUMENT naming the tensor when loaded from bytes alone', async () => {
    const { model } = mlp();
    const { bytes } = directoryModel('bytes-alone', model, { b2: { location: 'b2.bin' } });
    const error = await refusal(bytes, {});
    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.message).toContain("tensor 'b2' uses external data");
  });

  const locationCases: Array<[string, string, string]> = [
    ['an absolute path', '/etc/passwd', 'is an absolute path'],
    ['a parent directory', '../secret.bin', "has a '..' component"],
    ['a parent directory further in', 'data/../../secret.bin', "has a '..' component"],
    ['an empty location', '', 'is empty'],
  ];
  it.each(locationCases)('refuses %s as INVALID_ARGUMENT naming the tensor', async (_what, location, detail) => {
    const { model } = mlp();
    const { directory, bytes } = directoryModel(`location-${Math.random().toString(36).slice(2)}`, model, { w2: { location } });
    const error = await refusal(bytes, { modelDirectory: directory });
    expect(error.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(error.message).toContain("tensor 'w2'");
    expect(error.message).toContain(detail);
  });

  it('refuses a symlink out of the model directory as FAILED_PRECONDITION', async () => {
    const { model, weights } = mlp();
    writeFileSync(join(root, 'outside.bin'), bytesOf(weights.b1.data as Float32Array));
    const { directory, bytes } = directoryModel('symlink', model, { b1: { location: 'b1.bin' } });
    symlinkSync(join(root, 'outside.bin'), join(directory, 'b1.bin'));
    const error = await refusal(bytes, { modelDirectory: directory });
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toBe("tensor 'b1': external data file 'b1.bin' resolves outside the model directory");
  });

  it('refuses a missing file as FAILED_PRECONDITION naming the tensor', async () => {
    const { model } = mlp();
    const { directory, bytes } = directoryModel('missing', model, { b1: { location: 'nowhere.bin' } });
    const error = await refusal(bytes, { modelDirectory: directory });
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("tensor 'b1': external data file 'nowhere.bin' is not in the model directory");
  });

  it('checks ranges against the file size and the tensor\'s shape before reading', async () => {
    const { model, weights } = mlp();
    const b1 = bytesOf(weights.b1.data as Float32Array);
    const past = directoryModel('past-end', model, { b1: { location: 'b1.bin', offset: '8', length: String(b1.length) } });
    writeFileSync(join(past.directory, 'b1.bin'), b1);
    const pastError = await refusal(past.bytes, { modelDirectory: past.directory });
    expect(pastError.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(pastError.message).toBe(`tensor 'b1': external data bytes 8..${8 + b1.length} lie past the end of 'b1.bin' (${b1.length} bytes)`);

    const short = directoryModel('short', model, { b1: { location: 'b1.bin', length: '12' } });
    writeFileSync(join(short.directory, 'b1.bin'), b1);
    const shortError = await refusal(short.bytes, { modelDirectory: short.directory });
    expect(shortError.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(shortError.message).toBe(`tensor 'b1': external data of 12 bytes, its shape [${HIDDEN}] needs ${b1.length}`);

    const badOffset = directoryModel('bad-offset', model, { b1: { location: 'b1.bin', offset: '-4' } });
    expect((await refusal(badOffset.bytes, { modelDirectory: badOffset.directory })).message)
      .toBe("tensor 'b1': external data 'offset' is '-4', not a non-negative integer");
  });

  it('refuses weights over the weight budget as RESOURCE_EXHAUSTED before opening any file', async () => {
    const { model } = mlp();
    // No weight file exists: a read would fail FAILED_PRECONDITION instead.
    const { directory, bytes } = directoryModel('over-budget', model, { w1: { location: 'w1.bin' } });
    const error = await refusal(bytes, { modelDirectory: directory, budgets: { weightBytes: 1024 } });
    expect(error.code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
    expect(error.message).toContain("initializer 'w1'");
  });
});
