/** nexus show <name>[@alias|:version]: one version in full (lineage, signature, files, aliases). */
import type { GetVersionResponse, ModelVersion, TensorSpec } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { registryClient, unaryCall } from '../remote/index.ts';
import { ExitCode, formatBytes, printJson, printTable, reportError } from '../terminal/index.ts';

/** A reference to one version: the newest, a number, or an alias. */
export interface ModelRef {
  name: string;
  /** 0: the newest (unless `alias` is set). */
  version: number;
  alias: string;
}

/**
 * Parses `name` (the newest), `name:3` or `name@v3` (version 3), `name@production` (an alias),
 * `name@latest` or `name:latest`.
 */
export function parseModelRef(ref: string): ModelRef {
  const match = /^([^@:]+)(?:([@:])(.+))?$/.exec(ref);
  if (!match) throw new Error(`'${ref}' is not a model reference; use name, name:version or name@alias`);
  const [, name, separator, selector] = match;
  if (!selector || selector === 'latest') return { name, version: 0, alias: '' };
  const number = separator === ':' ? selector : /^v(\d+)$/.exec(selector)?.[1];
  if (number !== undefined) {
    if (!/^\d+$/.test(number) || Number(number) < 1) throw new Error(`'${selector}' in '${ref}' is not a version number (1, 2, ...)`);
    return { name, version: Number(number), alias: '' };
  }
  return { name, version: 0, alias: selector };
}

/** Fetches the version a reference names. */
export async function resolveRef(registry: string, ref: ModelRef): Promise<GetVersionResponse> {
  const client = registryClient(registry);
  try {
    return await unaryCall<GetVersionResponse>((done) => client.getVersion({ modelName: ref.name, version: ref.version, alias: ref.alias }, done));
  } finally {
    client.close();
  }
}

export const formatTime = (unixMs: number) => new Date(unixMs).toISOString().replace('T', ' ').slice(0, 19);
export const formatCommit = (version: ModelVersion) =>
  version.lineage?.commit ? `${version.lineage.commit.slice(0, 10)}${version.lineage.dirty ? '+dirty' : ''}` : '-';
const formatTensor = (tensor: TensorSpec) => `${tensor.name} ${tensor.datatype}[${tensor.shape.map((dim) => (dim < 0 ? '?' : dim)).join(',')}]`;

export async function showVersion(refText: string, options: { registry: string; json?: boolean }): Promise<number> {
  let ref: ModelRef;
  try {
    ref = parseModelRef(refText);
  } catch (error) {
    console.error((error as Error).message);
    return ExitCode.USAGE;
  }
  try {
    const { version, aliases } = await resolveRef(options.registry, ref);
    if (options.json) {
      printJson({ ...version, aliases });
      return ExitCode.OK;
    }
    const record = version!;
    const lineage = record.lineage;
    const rows: Array<[string, string]> = [
      ['model', record.modelName],
      ['version', String(record.version)],
      ['aliases', aliases.join(', ') || '-'],
      ['format', record.format],
      ['size', formatBytes(record.files.length > 1 ? record.files.reduce((sum, file) => sum + file.sizeBytes, 0) : record.sizeBytes)],
      ['sha256', record.sha256],
      ['stored', `${formatTime(record.createdAtUnixMs)} by ${record.creator || '-'}`],
      ['commit', lineage?.commit || '- (not stored from a git repository)'],
    ];
    if (lineage?.commit) {
      rows.push(['branch', lineage.branch || '(detached HEAD)']);
      rows.push(['dirty', lineage.dirty ? `yes: ${lineage.changedFiles.join(', ')}` : 'no']);
      rows.push(['author', lineage.author], ['message', lineage.message.split('\n')[0]], ['remote', lineage.remoteUrl || '-']);
    }
    if (Object.keys(record.tags).length > 0) rows.push(['tags', Object.entries(record.tags).map(([key, value]) => `${key}=${value}`).join(', ')]);
    if (record.signature) {
      rows.push(['inputs', record.signature.inputs.map(formatTensor).join(', ') || '-']);
      rows.push(['outputs', record.signature.outputs.map(formatTensor).join(', ') || '-']);
    }
    printTable(['field', 'value'], rows);
    if (record.files.length > 1 || record.format !== 'onnx') {
      printTable(['file', 'size', 'sha256'], record.files.map((file) => [file.path, formatBytes(file.sizeBytes), file.sha256.slice(0, 12)]));
    }
    return ExitCode.OK;
  } catch (error) {
    return reportError(error, `could not show ${refText}`);
  }
}
