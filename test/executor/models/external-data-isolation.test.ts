/**
 * The isolated compile check of a directory model: the worker gets the .onnx bytes and the
 * directory's path and reads the external data itself, so it passes for a good directory,
 * refuses what the serving thread would refuse (a missing file, a location that climbs out,
 * weights over the weight budget before any read) with the same codes, and never needs the
 * weights re-encoded into the model.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { DEFAULT_COMPILE_BUDGETS } from '../../../services/executor/compiler/index.ts';
import { checkCompileInWorker } from '../../../services/executor/runtime/compile-isolation.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import { ModelProto, TensorProto_DataLocation } from '../../../services/protocol/generated/onnx/onnx.ts';

const root = mkdtempSync(join(tmpdir(), 'nexus-isolated-external-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const ROWS = 64;
const WIDTH = 32;

/** An embedding lookup whose table lives in `location`; the table's bytes written to `weights.bin` of a fresh directory. */
function directoryModel(location: string): { directory: string; bytes: Uint8Array } {
  const directory = mkdtempSync(join(root, 'model-'));
  const model = new GraphBuilder('lookup').input('ids', 'INT64', [-1]).initializer('table', 'FP32', [ROWS, WIDTH], new Float32Array(0))
    .node('Gather', ['table', 'ids'], ['rows'], { axis: 0 }).node('Relu', ['rows'], ['y']).output('y', 'FP32', [-1, WIDTH]).toModel({ opset: 17 });
  const table = model.graph!.initializer[0];
  table.dataLocation = TensorProto_DataLocation.EXTERNAL;
  table.externalData = [{ key: 'location', value: location }];
  writeFileSync(join(directory, 'weights.bin'), new Float32Array(ROWS * WIDTH).fill(1));
  return { directory, bytes: ModelProto.encode(model).finish() };
}

const check = (bytes: Uint8Array, modelDirectory: string | undefined, budgets = DEFAULT_COMPILE_BUDGETS) =>
  checkCompileInWorker({ bytes, modelDirectory, precision: 'fp32', gemmAlgorithm: 'tiled', budgets });

describe('the isolated check of a directory model', () => {
  it('passes with the weights read from the directory in the worker', async () => {
    const { directory, bytes } = directoryModel('weights.bin');
    await expect(check(bytes, directory)).resolves.toBeUndefined();
  });

  it('refuses the bytes alone, as the serving thread would (INVALID_ARGUMENT naming the tensor)', async () => {
    const { bytes } = directoryModel('weights.bin');
    await expect(check(bytes, undefined)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining("tensor 'table' uses external data") });
  });

  it('refuses a file the directory lacks (FAILED_PRECONDITION) and a location that climbs out (INVALID_ARGUMENT)', async () => {
    const missing = directoryModel('absent.bin');
    await expect(check(missing.bytes, missing.directory)).rejects.toMatchObject({ code: ErrorCode.FAILED_PRECONDITION, message: expect.stringContaining("tensor 'table'") });
    const climbing = directoryModel('../weights.bin');
    await expect(check(climbing.bytes, climbing.directory)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining("'..' component") });
  });

  it('refuses weights over the weight budget from their declared dims, before reading them (RESOURCE_EXHAUSTED)', async () => {
    const { directory, bytes } = directoryModel('weights.bin');
    rmSync(join(directory, 'weights.bin'));
    await expect(check(bytes, directory, { ...DEFAULT_COMPILE_BUDGETS, weightBytes: 1024 })).rejects.toMatchObject({
      code: ErrorCode.RESOURCE_EXHAUSTED, message: expect.stringContaining("initializer 'table' brings the weights to 8192 bytes"),
    });
  });
});
