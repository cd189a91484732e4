/**
 * The registry commands of `nexus`, each run as its own process against a registry on a free
 * port: store (git lineage, the dirty-tree rule, worktrees, detached HEAD, a repository without
 * commits, the `.nexus_meta.json` pin), versions, show, promote, rollback, history, pull and gc,
 * with --json for scripts and the exit codes that classify failures.
 */
import { credentials } from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryClient } from '../../services/protocol/generated/nexus/registry/v1/registry.ts';
import { startRegistry, type RunningRegistry } from '../../services/registry/index.ts';
import { REPO_ROOT, tinyModel } from '../registry/fixtures.ts';

const REFUSED = 6;
const NOT_FOUND = 3;

let work: string;
let registry: RunningRegistry;

interface Run { code: number; stdout: string; stderr: string }

/** Tables are coloured; assertions read the text. */
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, '');

async function nexus(args: string[], cwd: string): Promise<Run> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'services/cli/main.ts'), ...args], {
      cwd, env: { ...process.env, NEXUS_REGISTRY: registry.address },
    });
    return { code: 0, stdout: plain(stdout), stderr };
  } catch (error) {
    const failed = error as Run;
    return { code: failed.code, stdout: plain(failed.stdout), stderr: failed.stderr };
  }
}

const json = (run: Run) => {
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout);
};

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('git', ['-c', 'user.name=Ada', '-c', 'user.email=ada@example.com', '-c', 'init.defaultBranch=main', ...args], { cwd });
  return stdout.trim();
}

/** A repository with training code and a model file, committed once. */
async function project(name: string): Promise<{ dir: string; commit: string }> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await git(dir, 'init', '-q');
  await writeFile(join(dir, 'train.py'), 'print("train")\n');
  await writeFile(join(dir, 'model.onnx'), tinyModel(1));
  await git(dir, 'add', '.');
  await git(dir, 'commit', '-q', '-m', 'Train the model');
  await git(dir, 'remote', 'add', 'origin', 'https://ada:hunter2@git.example.com/team/models.git');
  return { dir, commit: await git(dir, 'rev-parse', 'HEAD') };
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'nexus-cli-'));
  // No server minimum age for GC, so `nexus gc --min-age-seconds 0` can collect what a test left.
  registry = await startRegistry({ dataDir: join(work, 'registry'), limits: { gcMinAgeMs: 0 } });
});

afterAll(async () => {
  await registry?.shutdown(1000);
  await rm(work, { recursive: true, force: true });
});

describe('nexus store', () => {
  it('records the commit, pins the version in .nexus_meta.json, and does not count the pin or the model as changes', async () => {
    const { dir, commit } = await project('clean');
    const first = json(await nexus(['store', 'model.onnx', 'clean', '--json', '--tag', 'dataset=v1'], dir));
    expect(first).toMatchObject({
      modelName: 'clean', version: 1, format: 'onnx', tags: { dataset: 'v1' },
      lineage: { commit, branch: 'main', dirty: false, remoteUrl: 'https://git.example.com/team/models.git', author: 'Ada <ada@example.com>', message: 'Train the model' },
      files: [{ path: 'model.onnx' }],
    });
    const meta = JSON.parse(await readFile(join(dir, '.nexus_meta.json'), 'utf8'));
    expect(meta).toEqual({ models: { clean: { name: 'clean', version: 1, digest: `sha256:${first.sha256}`, format: 'onnx', sizeBytes: first.sizeBytes, path: 'model.onnx' } } });

    // Commit the pin, retrain (the tracked model file changes), store again: still clean.
    await git(dir, 'add', '.nexus_meta.json');
    await git(dir, 'commit', '-q', '-m', 'Pin clean v1');
    await writeFile(join(dir, 'model.onnx'), tinyModel(2));
    const second = json(await nexus(['store', 'model.onnx', 'clean', '--json'], dir));
    expect(second.lineage).toMatchObject({ dirty: false, message: 'Pin clean v1' });
    // The pin now differs from its commit; a third store is still not refused for it.
    const third = json(await nexus(['store', 'model.onnx', 'clean', '--json'], dir));
    expect(third).toMatchObject({ version: 3, deduplicated: true, lineage: { dirty: false } });
    expect(JSON.parse(await readFile(join(dir, '.nexus_meta.json'), 'utf8')).models.clean.version).toBe(3);
  });

  it('refuses a dirty tree with exit code 6 naming the changed files, and records it with --allow-dirty', async () => {
    const { dir, commit } = await project('dirty');
    await writeFile(join(dir, 'train.py'), 'print("train harder")\n');
    const refused = await nexus(['store', 'model.onnx', 'dirty'], dir);
    expect(refused.code).toBe(REFUSED);
    expect(refused.stderr).toMatch(/dirty working tree: 1 tracked file differ.*\(train\.py\).*--allow-dirty/s);
    expect((await nexus(['versions', 'dirty'], dir)).code).toBe(NOT_FOUND); // nothing was stored

    const stored = json(await nexus(['store', 'model.onnx', 'dirty', '--allow-dirty', '--json'], dir));
    expect(stored.lineage).toMatchObject({ commit, dirty: true, changedFiles: ['train.py'] });
  });

  it('refuses a repository without commits unless --allow-dirty, then stores without a commit', async () => {
    const dir = join(work, 'fresh');
    await mkdir(dir);
    await git(dir, 'init', '-q');
    await writeFile(join(dir, 'model.onnx'), tinyModel(3));
    const refused = await nexus(['store', 'model.onnx', 'fresh'], dir);
    expect(refused.code).toBe(REFUSED);
    expect(refused.stderr).toMatch(/has no commits yet/);
    const stored = json(await nexus(['store', 'model.onnx', 'fresh', '--allow-dirty', '--json'], dir));
    expect(stored.lineage).toBeUndefined();
  });

  it('stores from a detached HEAD with the commit and no branch', async () => {
    const { dir, commit } = await project('detached');
    await git(dir, 'checkout', '-q', '--detach', 'HEAD');
    const run = await nexus(['store', 'model.onnx', 'detached', '--json'], dir);
    expect(json(run).lineage).toMatchObject({ commit, branch: '', dirty: false });
  });

  it('reads lineage in a git worktree and in a checkout whose .git is a file', async () => {
    const { dir } = await project('main-checkout');
    const worktree = join(work, 'feature-tree');
    await git(dir, 'worktree', 'add', '-q', '-b', 'feature', worktree);
    await writeFile(join(worktree, 'train.py'), 'print("feature")\n');
    await git(worktree, 'commit', '-q', '-am', 'Feature training');
    const featureCommit = await git(worktree, 'rev-parse', 'HEAD');
    const fromWorktree = json(await nexus(['store', 'model.onnx', 'worktree', '--json'], worktree));
    expect(fromWorktree.lineage).toMatchObject({ commit: featureCommit, branch: 'feature', dirty: false, message: 'Feature training', remoteUrl: 'https://git.example.com/team/models.git' });
    // A change in the worktree makes it dirty; the same file in the main checkout is untouched.
    await writeFile(join(worktree, 'train.py'), 'print("feature, edited")\n');
    expect((await nexus(['store', 'model.onnx', 'worktree'], worktree)).code).toBe(REFUSED);

    const separate = join(work, 'separate');
    await mkdir(separate);
    await git(separate, 'init', '-q', '--separate-git-dir', join(work, 'separate.git'));
    await writeFile(join(separate, 'model.onnx'), tinyModel(4));
    await git(separate, 'add', '.');
    await git(separate, 'commit', '-q', '-m', 'Separate git dir');
    const fromSeparate = json(await nexus(['store', 'model.onnx', 'separate', '--json'], separate));
    expect(fromSeparate.lineage).toMatchObject({ commit: await git(separate, 'rev-parse', 'HEAD'), branch: 'main', dirty: false });
  });
});

describe('aliases, versions, pull and gc', () => {
  let dir: string;

  beforeAll(async () => {
    ({ dir } = await project('served'));
    for (const seed of [11, 12, 13]) {
      await writeFile(join(dir, 'model.onnx'), tinyModel(seed));
      const args = ['store', 'model.onnx', 'served', '--json'];
      if (seed === 11) args.push('--alias', 'production');
      json(await nexus(args, dir));
    }
  });

  it('promotes by compare-and-swap, refuses a stale expectation with exit code 6, rolls back, and shows the history', async () => {
    expect(json(await nexus(['show', 'served@production', '--json'], dir))).toMatchObject({ version: 1, aliases: ['production'] });
    expect(json(await nexus(['promote', 'served', '3', 'production', '--reason', 'better recall', '--json'], dir)).move)
      .toMatchObject({ fromVersion: 1, toVersion: 3, reason: 'better recall', revision: 2 });
    const stale = await nexus(['promote', 'served', '2', 'production', '--expect', '1'], dir);
    expect(stale.code).toBe(REFUSED);
    expect(stale.stderr).toMatch(/points at version 3, not the expected 1/);
    expect(json(await nexus(['rollback', 'served', 'production', '--reason', 'latency', '--json'], dir)).move)
      .toMatchObject({ fromVersion: 3, toVersion: 1, rollback: true });

    const history = json(await nexus(['history', 'served', 'production', '--json'], dir));
    expect(history.map((move: { fromVersion: number; toVersion: number; reason: string; rollback: boolean }) =>
      [move.fromVersion, move.toVersion, move.reason, move.rollback])).toEqual([
      [0, 1, 'stored by nexus store', false], [1, 3, 'better recall', false], [3, 1, 'latency', true],
    ]);
    const table = await nexus(['history', 'served', 'production'], dir);
    expect(table.stdout).toMatch(/rollback.*latency/);

    const versions = json(await nexus(['versions', 'served', '--json'], dir));
    expect(versions.versions.map((version: { version: number }) => version.version)).toEqual([1, 2, 3]);
    expect(versions.aliases).toMatchObject([{ alias: 'production', version: 1, revision: 3 }]);
    expect((await nexus(['versions', 'served'], dir)).stdout).toMatch(/│ 1 +│ production/);
  });

  it('answers exit code 3 for what does not exist, and 2 for a malformed reference', async () => {
    expect((await nexus(['show', 'served:9'], dir)).code).toBe(NOT_FOUND);
    expect((await nexus(['show', 'served@canary'], dir)).code).toBe(NOT_FOUND);
    expect((await nexus(['rollback', 'served', 'canary'], dir)).code).toBe(NOT_FOUND);
    expect((await nexus(['show', 'served:zero'], dir)).code).toBe(2);
  });

  it('pulls a version by alias and a directory model by number, verified, into a directory', async () => {
    const target = join(work, 'pulled');
    const pulled = json(await nexus(['pull', 'served@production', target, '--json'], dir));
    expect(pulled).toMatchObject({ version: 1, downloaded: 1, kept: 0 });
    expect((await readFile(join(target, 'model.onnx'))).equals(Buffer.from(tinyModel(11)))).toBe(true);
    expect(json(await nexus(['pull', 'served:1', target, '--json'], dir))).toMatchObject({ downloaded: 0, kept: 1 });

    const model = join(work, 'tokenizer-model');
    await mkdir(join(model, 'nested'), { recursive: true });
    await writeFile(join(model, 'config.json'), '{"layers": 2}\n');
    await writeFile(join(model, 'nested/vocab.txt'), 'a\nb\n');
    const stored = json(await nexus(['store', model, 'tokenizer', '--json'], work));
    expect(stored).toMatchObject({ format: 'directory', version: 1 });
    const restored = join(work, 'restored');
    json(await nexus(['pull', 'tokenizer:1', restored, '--json'], work));
    expect(await readFile(join(restored, 'nested/vocab.txt'), 'utf8')).toBe('a\nb\n');
    expect(await readFile(join(restored, 'config.json'), 'utf8')).toBe('{"layers": 2}\n');
  });

  it('lists garbage without deleting it unless --delete is given', async () => {
    const client = new RegistryClient(registry.address, credentials.createInsecure());
    const orphan = Buffer.from('bytes no version refers to');
    const { createHash } = await import('node:crypto');
    const digest = createHash('sha256').update(orphan).digest('hex');
    await new Promise<void>((resolve, reject) => {
      const stream = client.uploadBlob((error) => (error ? reject(error) : resolve()));
      stream.write({ header: { sha256: digest, sizeBytes: orphan.byteLength } });
      stream.write({ chunk: orphan });
      stream.end();
    });
    client.close();
    const dryRun = await nexus(['gc', '--min-age-seconds', '0'], dir);
    expect(dryRun.stdout).toMatch(/1 unreferenced object, 26 B would be deleted/);
    expect((await nexus(['gc'], dir)).stdout).toMatch(/0 unreferenced objects/); // younger than an hour: kept
    const deleted = json(await nexus(['gc', '--min-age-seconds', '0', '--delete', '--json'], dir));
    expect(deleted.garbage.map((object: { sha256: string }) => object.sha256)).toEqual([digest]);
    expect(json(await nexus(['gc', '--min-age-seconds', '0', '--json'], dir)).garbage).toEqual([]);
  });
});
