/**
 * Reads where a model comes from: the git repository around a path, with isomorphic-git (no git
 * binary needed). Credentials in the remote URL are stripped before anything is recorded.
 *
 * Besides an ordinary checkout this reads a repository whose `.git` is a file: a submodule or a
 * `--separate-git-dir` checkout (`gitdir:` points at a whole git directory) and a linked worktree
 * from `git worktree add` (its git directory holds HEAD and the index, and `commondir` points at
 * the main repository's objects, refs and config, which isomorphic-git is shown through a thin
 * path-mapping file system).
 */
import * as fs from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import git from 'isomorphic-git';
import type { GitLineage } from '../../protocol/generated/nexus/registry/v1/registry.ts';

/** The metadata file `nexus store` writes at the repository root; it never makes a tree dirty. */
export const META_FILE = '.nexus_meta.json';

/** Drops user:password@ (or a token@) from a URL; leaves scp-style git@host:path alone. */
export function stripCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return url;
  }
}

/** Lineage outcomes a caller must tell the user about. */
export type LineageResult =
  | {
    kind: 'found';
    root: string;
    lineage: GitLineage;
    /** HEAD is a commit, not a branch (lineage.branch is then empty). */
    detached: boolean;
    /** A worktree, submodule or separate git directory (`.git` is a file). */
    linkedGitDir: boolean;
  }
  | { kind: 'no-repository' }
  | { kind: 'no-commits'; root: string; branch: string }
  | { kind: 'unreadable'; root: string; reason: string };

/** Where a checkout's git data lives. */
interface GitDirs {
  root: string;
  /** HEAD and the index. */
  gitdir: string;
  /** Objects, refs and config (the same as gitdir except in a linked worktree). */
  commonDir: string;
}

/** The nearest directory at or above `path` holding `.git` (a directory or a file). */
export async function findRepositoryRoot(path: string): Promise<string | undefined> {
  let dir = (await stat(path).catch(() => undefined))?.isDirectory() ? path : dirname(path);
  for (;;) {
    if (await stat(join(dir, '.git')).then(() => true, () => false)) return dir;
    if (dirname(dir) === dir) return undefined;
    dir = dirname(dir);
  }
}

async function gitDirsOf(root: string): Promise<GitDirs> {
  const dotGit = join(root, '.git');
  if ((await stat(dotGit)).isDirectory()) return { root, gitdir: dotGit, commonDir: dotGit };
  const text = await readFile(dotGit, 'utf8');
  const match = /^gitdir:\s*(.+?)\s*$/m.exec(text);
  if (!match) throw new Error(`${dotGit} is a file without a 'gitdir:' line`);
  const gitdir = resolve(root, match[1]);
  if (!(await stat(gitdir).then((info) => info.isDirectory(), () => false))) {
    throw new Error(`${dotGit} points at ${gitdir}, which does not exist (was the main repository moved, or the worktree pruned?)`);
  }
  const commonText = await readFile(join(gitdir, 'commondir'), 'utf8').catch(() => undefined);
  return { root, gitdir, commonDir: commonText ? resolve(gitdir, commonText.trim()) : gitdir };
}

/** Files that belong to one worktree; everything else in its git directory lives in the common one. */
const PER_WORKTREE = /^(HEAD|index|ORIG_HEAD|FETCH_HEAD|MERGE_HEAD|CHERRY_PICK_HEAD|logs\/HEAD)$/;

/** An fs for isomorphic-git that serves a linked worktree's shared files from the common directory. */
function worktreeFs(dirs: GitDirs): typeof fs {
  if (dirs.gitdir === dirs.commonDir) return fs;
  const prefix = dirs.gitdir + sep;
  const map = (path: unknown) => {
    if (typeof path !== 'string' || !path.startsWith(prefix)) return path;
    const inside = path.slice(prefix.length);
    return PER_WORKTREE.test(inside.split(sep).join('/')) ? path : join(dirs.commonDir, inside);
  };
  const promises = Object.fromEntries(
    ['readFile', 'writeFile', 'unlink', 'readdir', 'mkdir', 'rmdir', 'stat', 'lstat', 'readlink', 'symlink', 'chmod', 'rm'].map((name) => {
      const method = (fs.promises as unknown as Record<string, (...args: unknown[]) => unknown>)[name];
      return [name, (path: unknown, ...rest: unknown[]) => method.call(fs.promises, map(path), ...rest)];
    }),
  );
  return { promises } as unknown as typeof fs;
}

/**
 * Reads the lineage of the repository containing `path` (a file or directory). Changes to the
 * paths in `ignore` (the artifact being stored) and to the metadata file do not count as dirty:
 * the artifact is identified by its digest, and the metadata file is ours.
 */
export async function readGitLineage(path: string, options: { ignore?: string[] } = {}): Promise<LineageResult> {
  const root = await findRepositoryRoot(resolve(path));
  if (!root) return { kind: 'no-repository' };
  let dirs: GitDirs;
  try {
    dirs = await gitDirsOf(root);
  } catch (error) {
    return { kind: 'unreadable', root, reason: (error as Error).message };
  }
  const client = { fs: worktreeFs(dirs), dir: root, gitdir: dirs.gitdir };
  const branch = await git.currentBranch({ ...client, fullname: false }).catch(() => undefined);
  let commit: string;
  try {
    commit = await git.resolveRef({ ...client, ref: 'HEAD' });
  } catch {
    return { kind: 'no-commits', root, branch: branch ?? '' };
  }
  try {
    const remotes = await git.listRemotes(client);
    const remote = remotes.find((candidate) => candidate.remote === 'origin') ?? remotes[0];
    const [{ commit: details }, matrix] = await Promise.all([git.readCommit({ ...client, oid: commit }), git.statusMatrix(client)]);
    const ignored = [META_FILE, ...(options.ignore ?? []).map((ignoredPath) => relative(root, resolve(ignoredPath)).split(sep).join('/'))]
      .filter((entry) => entry && !entry.startsWith('..') && !isAbsolute(entry));
    const isIgnored = (file: string) => ignored.some((entry) => file === entry || file.startsWith(`${entry}/`));
    // A row is [file, HEAD, workdir, stage]: 1,1,1 is unchanged; untracked files (0,2,0) do not
    // make the tree dirty, as with `git describe --dirty`.
    const changedFiles = matrix
      .filter(([file, head, workdir, stage]) => !(head === 1 && workdir === 1 && stage === 1) && !(head === 0 && stage === 0) && !isIgnored(file))
      .map(([file]) => file);
    return {
      kind: 'found',
      root,
      detached: branch === undefined,
      linkedGitDir: dirs.gitdir !== join(root, '.git'),
      lineage: {
        remoteUrl: remote ? stripCredentials(remote.url) : '',
        commit,
        branch: branch ?? '',
        dirty: changedFiles.length > 0,
        changedFiles,
        author: `${details.author.name} <${details.author.email}>`,
        message: details.message.trim(),
      },
    };
  } catch (error) {
    return { kind: 'unreadable', root, reason: (error as Error).message };
  }
}
