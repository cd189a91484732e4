/**
 * Directory versions: which kind of model a manifest is (the one root .onnx, a tagged entry,
 * a checkpoint, or a precise refusal), which files an ONNX model's external data needs, and
 * the artifact cache staging exactly those files, verified, as hard links under their manifest
 * paths (paths that would climb out refused, the staging removed, a dead executor's swept).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { classifyDirectory, ONNX_ENTRY_TAG } from '../../../services/domain/directory-model.ts';
import { ErrorCode, NexusError } from '../../../services/domain/index.ts';
import { ArtifactCache } from '../../../services/executor/service/artifact-cache.ts';
import { checkStoredPath, externalFilesOf } from '../../../services/executor/service/directory-version.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import type { RegistryClient } from '../../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { TensorProto_DataLocation } from '../../../services/protocol/generated/onnx/onnx.ts';

const file = (path: string) => ({ path, sha256: createHash('sha256').update(path).digest('hex') });

function refusal(run: () => unknown): NexusError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(NexusError);
    return error as NexusError;
  }
  throw new Error('expected a refusal');
}

describe('what a directory version is', () => {
  it('is the one .onnx at the root, whatever else it holds', () => {
    const files = ['README.md', 'model.onnx', 'weights.bin', 'onnx/quantized.onnx'].map(file);
    expect(classifyDirectory(files, {})).toEqual({ kind: 'onnx', entry: files[1] });
  });

  it('is the entry the tag names, in a subfolder or beside other models and a checkpoint', () => {
    const files = ['a.onnx', 'b.onnx', 'onnx/model.onnx', 'model.safetensors', 'config.json'].map(file);
    expect(classifyDirectory(files, { [ONNX_ENTRY_TAG]: 'onnx/model.onnx' })).toEqual({ kind: 'onnx', entry: files[2] });
  });

  it('is a checkpoint with safetensors and no root .onnx', () => {
    expect(classifyDirectory(['config.json', 'model.safetensors', 'onnx/model.onnx'].map(file), {})).toEqual({ kind: 'checkpoint' });
    expect(classifyDirectory(['config.json', 'model.safetensors.index.json', 'a.safetensors'].map(file), {})).toEqual({ kind: 'checkpoint' });
  });

  const refused: Array<[string, string[], Record<string, string>, string]> = [
    ['two root models', ['a.onnx', 'b.onnx'], {}, "2 ONNX models at its root ('a.onnx', 'b.onnx'); name the entry point with the tag nexus.onnx_entry"],
    ['a model beside a checkpoint', ['model.onnx', 'config.json', 'model.safetensors'], {},
      "both an ONNX model ('model.onnx') and a safetensors checkpoint ('model.safetensors')"],
    ['neither', ['notes.txt', 'weights.bin'], {}, "holds neither an ONNX model (one .onnx file at its root, or one named by the tag nexus.onnx_entry) nor a safetensors checkpoint"],
    ['a tag naming a missing file', ['model.onnx'], { [ONNX_ENTRY_TAG]: 'other.onnx' }, "tag nexus.onnx_entry='other.onnx' names no .onnx file of the version; it holds 'model.onnx'"],
    ['a tag naming a file that is not .onnx', ['model.onnx', 'weights.bin'], { [ONNX_ENTRY_TAG]: 'weights.bin' }, "tag nexus.onnx_entry='weights.bin' names no .onnx file"],
  ];
  it.each(refused)('refuses %s as FAILED_PRECONDITION saying what it found', (_what, paths, tags, message) => {
    const error = refusal(() => classifyDirectory(paths.map(file), tags));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain(message);
  });
});

describe('the files an ONNX directory model needs', () => {
  /** A model with tensor 'w' in external data at `location`, and 'b' inline. */
  function modelAt(location: string) {
    const model = new GraphBuilder('m').input('x', 'FP32', [2]).initializer('w', 'FP32', [2], new Float32Array(2))
      .initializer('b', 'FP32', [2], new Float32Array(2)).node('Add', ['x', 'w'], ['y']).node('Add', ['y', 'b'], ['z'])
      .output('z', 'FP32', [2]).toModel({ opset: 17 });
    const w = model.graph!.initializer[0];
    w.rawData = new Uint8Array();
    w.dataLocation = TensorProto_DataLocation.EXTERNAL;
    w.externalData = [{ key: 'location', value: location }];
    return model;
  }

  it('resolves locations against the entry folder, once per file', () => {
    const files = ['onnx/model.onnx', 'onnx/data/w.bin', 'w.bin'].map(file);
    expect(externalFilesOf(modelAt('./data/w.bin'), 'onnx/model.onnx', files)).toEqual([files[1]]);
    expect(externalFilesOf(modelAt('w.bin'), 'model.onnx', files)).toEqual([files[2]]);
  });

  it('refuses a location the version does not hold (FAILED_PRECONDITION) and one that climbs out (INVALID_ARGUMENT), naming the tensor', () => {
    const files = ['onnx/model.onnx', 'w.bin'].map(file);
    const absent = refusal(() => externalFilesOf(modelAt('w.bin'), 'onnx/model.onnx', files));
    expect(absent.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(absent.message).toContain("tensor 'w': external data file 'w.bin' (onnx/w.bin in the version) is not one of the version's files");
    const climbing = refusal(() => externalFilesOf(modelAt('../w.bin'), 'onnx/model.onnx', files));
    expect(climbing.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(climbing.message).toContain("tensor 'w'");
  });

  it.each(['', '/etc/passwd', '../x', 'a/../../x', 'a//b', './a', 'a\\..\\b', 'a\0b'])('refuses the stored path %j', (path) => {
    expect(refusal(() => checkStoredPath(path)).code).toBe(ErrorCode.INVALID_ARGUMENT);
  });
});

describe('staging a directory version', () => {
  const contents = new Map([['model.onnx', 'entry'], ['data/w.bin', 'weights'], ['other.bin', 'other']]
    .map(([path, text]) => { const bytes = new TextEncoder().encode(text); return [createHash('sha256').update(bytes).digest('hex'), { path, bytes }]; }));
  const stored = [...contents].map(([sha256, { path }]) => ({ path, sha256 }));
  let dir: string;
  let downloads: string[];
  let cache: ArtifactCache;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'nexus-staging-'));
    downloads = [];
    const registry = {
      downloadArtifact: ({ sha256 }: { sha256: string }) => {
        downloads.push(sha256);
        const stream = new PassThrough({ objectMode: true });
        stream.end({ offset: 0, chunk: contents.get(sha256)?.bytes ?? new TextEncoder().encode('tampered') });
        return Object.assign(stream, { cancel: () => stream.destroy() });
      },
    } as unknown as RegistryClient;
    cache = new ArtifactCache(dir, registry, { idleTimeoutMs: 1_000 });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('lays the files out under their paths as hard links to the verified cached files, downloading each once', async () => {
    const staged = await cache.stageDirectory(stored.slice(0, 2));
    expect(new TextDecoder().decode(await readFile(join(staged.path, 'data', 'w.bin')))).toBe('weights');
    expect((await stat(join(staged.path, 'model.onnx'))).ino).toBe((await stat(join(dir, stored[0].sha256))).ino);
    expect(await readdir(staged.path)).toEqual(expect.arrayContaining(['model.onnx', 'data']));
    const again = await cache.stageDirectory(stored.slice(0, 2));
    expect(downloads).toHaveLength(2);
    await staged.remove();
    await again.remove();
    expect(await readdir(join(dir, 'staged'))).toEqual([]);
    expect((await readdir(dir)).sort()).toEqual([...stored.slice(0, 2).map((entry) => entry.sha256), 'staged'].sort());
  });

  it('refuses a path that climbs out before fetching anything, and bytes that do not match their digest as DATA_LOSS', async () => {
    await expect(cache.stageDirectory([{ path: '../escape.bin', sha256: stored[0].sha256 }])).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    expect(downloads).toEqual([]);
    await expect(cache.stageDirectory([{ path: 'model.onnx', sha256: 'f'.repeat(64) }])).rejects.toMatchObject({ code: ErrorCode.DATA_LOSS });
    expect(await readdir(join(dir, 'staged'))).toEqual([]);
  });

  it("removes a dead executor's old staging, keeping a live one's", async () => {
    const dead = join(dir, 'staged', '999999999.0123456789ab');
    const live = join(dir, 'staged', `${process.pid}.ba9876543210`);
    for (const path of [dead, live]) await mkdir(path, { recursive: true });
    await writeFile(join(dead, 'model.onnx'), 'x');
    const longAgo = new Date(Date.now() - 60_000);
    for (const path of [dead, live]) await utimes(path, longAgo, longAgo);
    const staged = await cache.stageDirectory(stored.slice(2));
    expect((await readdir(join(dir, 'staged'))).sort()).toEqual([live.split('/').pop(), staged.path.split('/').pop()].sort());
  });
});
