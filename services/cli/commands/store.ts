/**
 * nexus store <path> <name>: uploads a model file or directory as a new version, recording the git
 * commit it came from, and pins it in the repository's `.nexus_meta.json` so that commit names
 * its model exactly.
 */
import { status } from '@grpc/grpc-js';
import { SingleBar } from 'cli-progress';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { SetAliasRequest, type GetAliasResponse, type ModelVersion, type SetAliasResponse } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { isCodedRemoteError, LABELS_TAG, PRECISION_TAG } from '../../domain/index.ts';
import { listModelFiles, registryClient, unaryCall, uploadModelDirectory, uploadModelFile, type VersionHeader } from '../remote/index.ts';
import { findRepositoryRoot, type LineageResult, META_FILE, readGitLineage } from '../lineage/index.ts';
import { ExitCode, formatBytes, printJson, reportError } from '../terminal/index.ts';

export interface StoreOptions {
  registry: string;
  /** Artifact format; default: onnx for a file, safetensors or directory for a directory. */
  format?: string;
  tag: string[];
  /** fp32 (safe) or fp16 (fast, where the GPU has shader-f16): recorded as the precision tag (PRECISION_TAG). */
  precision?: string;
  /** A file of class labels, one per line: recorded as the labels tag (LABELS_TAG) for the classification extension. */
  labels?: string;
  maxBatchSize?: string;
  maxQueueDelayUs?: string;
  json?: boolean;
  /** Where to read git lineage from, when not from the model's own location. */
  lineagePath?: string;
  /** Point this alias at the new version. */
  alias?: string;
  /**
   * Refuse a working tree with uncommitted changes to tracked files (or no commit at all).
   * Default false for programmatic callers; the `nexus store` command sets it unless --allow-dirty.
   */
  refuseDirty?: boolean;
  /** Write `.nexus_meta.json` at the repository root. Default true. */
  writeMeta?: boolean;
}

/** Parses repeated --tag key=value flags. */
export function parseTags(tags: string[]): Record<string, string> {
  return Object.fromEntries(tags.map((tag) => {
    const at = tag.indexOf('=');
    if (at <= 0) throw new Error(`--tag '${tag}' must look like key=value`);
    return [tag.slice(0, at), tag.slice(at + 1)];
  }));
}

/** What `.nexus_meta.json` records about one model. */
export interface MetaEntry {
  name: string;
  version: number;
  /** "sha256:<hex>" of the artifact (the manifest, for a directory model). */
  digest: string;
  format: string;
  sizeBytes: number;
  /** The stored file or directory, relative to the repository root. */
  path: string;
}

/** `.nexus_meta.json`: the models stored from this repository, by name. */
export interface MetaFile {
  models: Record<string, MetaEntry>;
}

/** Adds or replaces one model's entry, keeping the file's other entries; sorted for small diffs. */
export async function writeMetaFile(root: string, entry: MetaEntry): Promise<string> {
  const path = join(root, META_FILE);
  let meta: MetaFile = { models: {} };
  const existing = await readFile(path, 'utf8').catch(() => undefined);
  if (existing) {
    try {
      const parsed = JSON.parse(existing) as Partial<MetaFile>;
      if (parsed && typeof parsed.models === 'object' && parsed.models) meta = { models: parsed.models };
    } catch {
      // An unreadable file is replaced: it would pin nothing anyway.
    }
  }
  meta.models[entry.name] = entry;
  const sorted: MetaFile = { models: Object.fromEntries(Object.entries(meta.models).sort(([a], [b]) => a.localeCompare(b))) };
  await writeFile(path, `${JSON.stringify(sorted, null, 2)}\n`);
  return path;
}

/** Why a lineage blocks a store that must come from committed code; undefined when it does not. */
export function dirtyRefusal(result: LineageResult, what: string): string | undefined {
  if (result.kind === 'no-commits') {
    return `the repository at ${result.root} has no commits yet, so ${what} could not be tied to one. Commit the code that produced it, or pass --allow-dirty to store it without a commit.`;
  }
  if (result.kind === 'unreadable') {
    return `the git repository at ${result.root} could not be read (${result.reason}). Fix it, or pass --allow-dirty to store without lineage.`;
  }
  if (result.kind === 'found' && result.lineage.dirty) {
    const files = result.lineage.changedFiles;
    const listed = files.slice(0, 10).join(', ') + (files.length > 10 ? `, and ${files.length - 10} more` : '');
    return `refusing to store ${what} from a dirty working tree: ${files.length === 1 ? '1 tracked file differs' : `${files.length} tracked files differ`} from commit ${result.lineage.commit.slice(0, 10)} (${listed}). Commit them so the version names the code that made it, or pass --allow-dirty to store anyway (the changed files are recorded).`;
  }
  return undefined;
}

/** The CLI's user, recorded as creator and as the actor of alias moves. */
export const currentUser = () => {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER ?? 'unknown';
  }
};

/** The labels file's lines (a final newline and CRs dropped), joined for the tag; throws a usage message. */
async function labelsTag(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch((error: Error) => { throw new Error(`--labels ${file}: ${error.message}`); });
  const labels = text.replace(/\r/g, '').replace(/\n$/, '').split('\n');
  if (labels.length === 0 || labels.every((label) => label === '')) throw new Error(`--labels ${file} holds no labels`);
  return labels.join('\n');
}

export async function storeModel(file: string, name: string, options: StoreOptions): Promise<number> {
  const path = resolve(file);
  const info = await stat(path).catch(() => undefined);
  if (!info || (!info.isFile() && !info.isDirectory())) {
    console.error(`${file} is not a file or directory`);
    return ExitCode.NOT_FOUND;
  }
  const isDirectory = info.isDirectory();
  let tags: Record<string, string>;
  try {
    tags = parseTags(options.tag);
    if (options.precision !== undefined) {
      if (options.precision !== 'fp16' && options.precision !== 'fp32') throw new Error(`--precision '${options.precision}' must be fp16 or fp32`);
      tags[PRECISION_TAG] = options.precision;
    }
    if (options.labels !== undefined) tags[LABELS_TAG] = await labelsTag(options.labels);
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  const note = (message: string) => {
    if (!options.json) console.error(`note: ${message}`);
  };

  const lineageResult = await readGitLineage(options.lineagePath ?? path, { ignore: [path] });
  const refusal = options.refuseDirty ? dirtyRefusal(lineageResult, file) : undefined;
  if (refusal) {
    console.error(refusal);
    return ExitCode.REFUSED;
  }
  switch (lineageResult.kind) {
    case 'no-repository':
      note(`${file} is not inside a git repository; the version will carry no commit`);
      break;
    case 'no-commits':
      note(`the repository at ${lineageResult.root} has no commits yet; the version will carry no commit`);
      break;
    case 'unreadable':
      note(`the git repository at ${lineageResult.root} could not be read (${lineageResult.reason}); the version will carry no commit`);
      break;
    case 'found':
      if (lineageResult.detached) note(`HEAD is detached at ${lineageResult.lineage.commit.slice(0, 10)}; the version records the commit without a branch`);
      if (lineageResult.lineage.dirty) note(`storing from a dirty working tree; the ${lineageResult.lineage.changedFiles.length} changed files are recorded`);
      break;
  }
  const lineage = lineageResult.kind === 'found' ? lineageResult.lineage : undefined;

  let format = options.format;
  if (!format) {
    format = isDirectory
      ? ((await listModelFiles(path)).some((entry) => entry.path.endsWith('.safetensors')) ? 'safetensors' : 'directory')
      : 'onnx';
  }
  const header: VersionHeader = {
    modelName: name,
    format,
    lineage,
    tags,
    creator: currentUser(),
    batching: options.maxBatchSize || options.maxQueueDelayUs
      ? { maxBatchSize: Number(options.maxBatchSize ?? 0), maxQueueDelayUs: Number(options.maxQueueDelayUs ?? 0) }
      : undefined,
  };

  const client = registryClient(options.registry);
  const bar = process.stderr.isTTY && !options.json
    ? new SingleBar({ format: '{phase} [{bar}] {percentage}% {value}/{total} bytes', stream: process.stderr, hideCursor: true })
    : undefined;
  let phase = 'hashing  ';
  const onPhase = (next: 'hashing' | 'uploading') => {
    phase = next.padEnd(9);
    if (bar?.isActive) bar.stop();
  };
  const onProgress = (done: number, total: number) => {
    if (!bar) return;
    if (!bar.isActive) bar.start(total, 0, { phase });
    bar.update(done, { phase });
  };
  try {
    const response = isDirectory
      ? await uploadModelDirectory(client, path, header, onProgress, onPhase)
      : await uploadModelFile(client, path, header, onProgress, onPhase);
    bar?.stop();
    const version = response.version as ModelVersion;

    let aliasMoved: SetAliasResponse | undefined;
    let aliasError: unknown;
    if (options.alias) {
      try {
        const current = await unaryCall<GetAliasResponse>((done) => client.getAlias({ modelName: name, alias: options.alias! }, done))
          .then((reply) => reply.alias?.version ?? 0, (error: unknown) => {
            if (isCodedRemoteError(error) && error.code === status.NOT_FOUND) return 0;
            throw error;
          });
        aliasMoved = await unaryCall<SetAliasResponse>((done) => client.setAlias(SetAliasRequest.fromPartial({
          modelName: name, alias: options.alias!, version: version.version, expectedVersion: current,
          reason: `stored by nexus store`, actor: currentUser(),
        }), done));
      } catch (error) {
        aliasError = error;
      }
    }

    let metaPath: string | undefined;
    // The artifact's own repository (which --lineage-path callers may not have read) gets the pin.
    const repositoryRoot = await findRepositoryRoot(path);
    if (options.writeMeta !== false && repositoryRoot) {
      metaPath = await writeMetaFile(repositoryRoot, {
        name: version.modelName, version: version.version, digest: `sha256:${version.sha256}`, format: version.format,
        sizeBytes: isDirectory ? version.files.reduce((sum, entry) => sum + entry.sizeBytes, 0) : version.sizeBytes,
        path: relative(repositoryRoot, path).split(sep).join('/') || '.',
      });
    }

    if (options.json) {
      printJson({ ...version, deduplicated: response.deduplicated, alias: aliasMoved?.alias, metaFile: metaPath });
    } else {
      const commit = version.lineage?.commit ? ` from commit ${version.lineage.commit.slice(0, 10)}${version.lineage.dirty ? ' (dirty)' : ''}` : '';
      const size = isDirectory ? `${version.files.length} files, ${formatBytes(version.files.reduce((sum, entry) => sum + entry.sizeBytes, 0))}` : formatBytes(version.sizeBytes);
      console.log(`stored ${version.modelName} version ${version.version} (${size}, sha256 ${version.sha256.slice(0, 12)})${commit}`);
      if (!isDirectory && response.deduplicated) console.log('the same bytes were already stored; they are kept once');
      if ('skippedFiles' in response && (response as { skippedFiles: number }).skippedFiles > 0) {
        console.log(`${(response as { skippedFiles: number }).skippedFiles} files were already stored and were not sent again`);
      }
      if (aliasMoved?.alias) console.log(`${options.alias} -> version ${aliasMoved.alias.version} (was ${aliasMoved.move?.fromVersion || 'unset'})`);
      if (metaPath) console.log(`pinned in ${metaPath}; commit it so the commit names this model`);
    }
    if (aliasError) return reportError(aliasError, `stored version ${version.version}, but could not point ${options.alias} at it`);
    return ExitCode.OK;
  } catch (error) {
    bar?.stop();
    return reportError(error, `could not store ${file}`);
  } finally {
    client.close();
  }
}
