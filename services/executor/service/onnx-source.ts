/**
 * Where an ONNX version's bytes come from for one load: a one-file artifact fetched by its
 * digest, or a directory version's entry .onnx with the external data files its tensors name,
 * each fetched and verified by its own digest and staged under its manifest path (hard links to
 * the verified cached files), so the compiler reads them confined to that directory
 * (compiler/external-data.ts). The staging is removed once the compile has read it.
 */
import { ErrorCode, failedPrecondition, NexusError, type ModelKey } from '../../domain/index.ts';
import { decodeModel } from '../../onnx/model.ts';
import type { ModelVersion } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import type { CompileBudgets } from '../compiler/index.ts';
import type { GpuContext } from '../gpu/index.ts';
import type { StoredFile } from '../llm/checkpoint.ts';
import { compileOnnxModel, type CompiledModel, type Precision } from '../runtime/index.ts';
import type { ArtifactCache } from './artifact-cache.ts';
import { classifyDirectory } from '../../domain/directory-model.ts';
import { externalFilesOf } from './directory-version.ts';

/**
 * Formats whose artifact is a directory: a text-generation checkpoint (services/executor/llm) or
 * an ONNX model with its external data files, told apart by the files (directory-version.ts).
 */
const DIRECTORY_FORMATS = ['safetensors', 'directory'];

/** How a version loads: one ONNX file, an ONNX model in a directory (its entry file), or a checkpoint. */
export type ArtifactKind =
  | { readonly kind: 'onnx-file' }
  | { readonly kind: 'onnx-directory'; readonly entry: StoredFile }
  | { readonly kind: 'checkpoint' };

/** `error`'s code with `prefix` before its message. */
function prefixed(prefix: string, error: unknown): NexusError {
  const coded = NexusError.from(error);
  return new NexusError(coded.code, `${prefix}: ${coded.message}`);
}

/** The kind of a version's artifact, from its format and manifest; FAILED_PRECONDITION naming the model otherwise. */
export function artifactKindOf(key: ModelKey, record: ModelVersion): ArtifactKind {
  if (record.format === 'onnx') return { kind: 'onnx-file' };
  if (!DIRECTORY_FORMATS.includes(record.format)) {
    throw failedPrecondition(`model ${key} has format '${record.format}'; the executor runs 'onnx' models and directories (${DIRECTORY_FORMATS.join(', ')})`);
  }
  try {
    const directory = classifyDirectory(record.files, record.tags);
    return directory.kind === 'onnx' ? { kind: 'onnx-directory', entry: directory.entry } : { kind: 'checkpoint' };
  } catch (error) {
    throw prefixed(`model ${key}`, error);
  }
}

/** What one ONNX compile reads: the .onnx bytes and, for a directory model, the folder its external data is in. */
export interface OnnxSource {
  readonly bytes: Uint8Array;
  readonly modelDirectory?: string;
  /** Bytes the model's weights take at most: the artifact's size, or the .onnx and its external files together. */
  readonly sizeBytes: number;
  /** Frees what was staged for the compile, once it has read it. */
  release(): Promise<void>;
}

/** Fetches (and, for a directory model, stages) what compiling `artifact` reads. */
export async function fetchOnnxSource(artifacts: ArtifactCache, key: ModelKey, artifact: ArtifactKind, record: ModelVersion): Promise<OnnxSource> {
  if (artifact.kind === 'checkpoint') throw new NexusError(ErrorCode.INTERNAL, `model ${key} is a checkpoint, not an ONNX model`);
  if (artifact.kind === 'onnx-file') {
    const bytes = await artifacts.fetch(record.sha256);
    return { bytes, sizeBytes: bytes.byteLength, release: async () => {} };
  }
  const { entry } = artifact;
  const bytes = await artifacts.fetch(entry.sha256);
  let external: StoredFile[];
  try {
    external = externalFilesOf(decodeModel(bytes), entry.path, record.files);
  } catch (error) {
    throw prefixed(`model ${key} (${entry.path})`, error);
  }
  const staged = await artifacts.stageDirectory(external);
  const folder = entry.path.includes('/') ? entry.path.slice(0, entry.path.lastIndexOf('/')) : '';
  const sizes = new Map(record.files.map((file) => [file.path, file.sizeBytes]));
  return {
    bytes,
    modelDirectory: folder === '' ? staged.path : `${staged.path}/${folder}`,
    sizeBytes: bytes.byteLength + external.reduce((total, file) => total + (sizes.get(file.path) ?? 0), 0),
    release: () => staged.remove(),
  };
}

/**
 * Compiles an ONNX source, isolated: a directory model is checked in the worker from its
 * directory (compileOnnxModel hands the worker the directory, whose files it reads itself), then
 * compiled here from the same files.
 */
export function compileOnnxSource(
  gpu: GpuContext, source: OnnxSource, precision: Precision, compileBudgets: Partial<CompileBudgets> | undefined,
): Promise<CompiledModel> {
  return compileOnnxModel(gpu, source.bytes, { precision, budgets: compileBudgets, modelDirectory: source.modelDirectory });
}
