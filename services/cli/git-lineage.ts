/**
 * Reads where a model comes from: the git repository around a path, with isomorphic-git (no git
 * binary needed). Credentials in the remote URL are stripped before anything is recorded.
 */
import * as fs from 'node:fs';
import git from 'isomorphic-git';
import type { GitLineage } from '../protocol/generated/nexus/registry/v1/registry.ts';

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
  | { kind: 'found'; root: string; lineage: GitLineage }
  | { kind: 'no-repository' }
  | { kind: 'no-commits'; root: string };

/** Reads the lineage of the repository containing `path` (a file or directory). */
export async function readGitLineage(path: string): Promise<LineageResult> {
  let root: string;
  try {
    root = await git.findRoot({ fs, filepath: path });
  } catch {
    return { kind: 'no-repository' };
  }
  let commit: string;
  try {
    commit = await git.resolveRef({ fs, dir: root, ref: 'HEAD' });
  } catch {
    return { kind: 'no-commits', root };
  }
  const [branch, { commit: details }, remote, matrix] = await Promise.all([
    git.currentBranch({ fs, dir: root, fullname: false }),
    git.readCommit({ fs, dir: root, oid: commit }),
    git.getConfig({ fs, dir: root, path: 'remote.origin.url' }) as Promise<string | undefined>,
    git.statusMatrix({ fs, dir: root }),
  ]);
  // A row is [file, HEAD, workdir, stage]: 1,1,1 is unchanged; untracked files (0,2,0) do not
  // make the tree dirty, as with `git describe --dirty`.
  const changedFiles = matrix
    .filter(([, head, workdir, stage]) => !(head === 1 && workdir === 1 && stage === 1) && !(head === 0 && stage === 0))
    .map(([file]) => file);
  return {
    kind: 'found',
    root,
    lineage: {
      remoteUrl: remote ? stripCredentials(remote) : '',
      commit,
      branch: branch ?? '',
      dirty: changedFiles.length > 0,
      changedFiles,
      author: `${details.author.name} <${details.author.email}>`,
      message: details.message.trim(),
    },
  };
}
