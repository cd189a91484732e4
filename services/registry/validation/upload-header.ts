/**
 * What an upload may announce before its bytes arrive: a valid model name, a supported format,
 * sane tags and file name, and, for a directory model, a file list whose paths stay inside it.
 */
import { basename } from 'node:path';
import type { ManifestEntry, UploadHeader } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { invalidArgument } from '../../domain/index.ts';
import { budgetExceeded, checkArtifactSize, checkCount, DEFAULT_LIMITS, type RegistryLimits } from './limits.ts';
import { checkManifestPath, checkModelName, checkSha256, checkTags, MAX_MANIFEST_FILES } from './names.ts';

/** Formats whose artifact is one file streamed in the upload. */
export const FILE_FORMATS = ['onnx'] as const;
/** Formats whose artifact is a directory: files uploaded as blobs first, then a manifest. */
export const DIRECTORY_FORMATS = ['safetensors', 'directory'] as const;
/** Artifact formats the registry accepts. */
export const SUPPORTED_FORMATS = [...FILE_FORMATS, ...DIRECTORY_FORMATS] as const;

/** True for a format whose artifact is a directory of files listed in `header.files`. */
export const isDirectoryFormat = (format: string) => (DIRECTORY_FORMATS as readonly string[]).includes(format);

/**
 * Throws INVALID_ARGUMENT, naming the field at fault, unless the header describes an upload the
 * registry can take: a one-file format streams chunks and lists no files, a directory format
 * lists its files (each checked by `checkManifest`) and streams none. A size announced over
 * `limits` fails RESOURCE_EXHAUSTED, before any byte is read.
 */
export function checkUploadHeader(header: UploadHeader, limits: RegistryLimits = DEFAULT_LIMITS): UploadHeader {
  checkModelName(header.modelName, 'header.model_name');
  if (!(SUPPORTED_FORMATS as readonly string[]).includes(header.format)) {
    throw invalidArgument(`header.format '${header.format}' is not supported; use one of: ${SUPPORTED_FORMATS.join(', ')}`);
  }
  if (header.sha256) checkSha256(header.sha256, 'header.sha256');
  checkArtifactSize(checkCount(header.sizeBytes, 'header.size_bytes'), limits, 'header.size_bytes');
  if (header.batching) checkCount(header.batching.maxQueueDelayUs, 'header.batching.max_queue_delay_us');
  checkTags(header.tags, 'header.tags');
  if (header.fileName && (header.fileName !== basename(header.fileName) || header.fileName.includes('\\'))) {
    throw invalidArgument(`header.file_name '${header.fileName.slice(0, 200)}' must be a base name, without directories`);
  }
  if (header.fileName) checkManifestPath(header.fileName, 'header.file_name');
  if (isDirectoryFormat(header.format) && header.files.length === 0) {
    throw invalidArgument(`format '${header.format}' is a directory model: list its files in header.files (uploaded with UploadBlob)`);
  }
  if (!isDirectoryFormat(header.format) && header.files.length > 0) {
    throw invalidArgument(`format '${header.format}' is one file: stream it as chunks instead of listing header.files`);
  }
  return header;
}

/**
 * Checks a directory model's file list: valid unique paths, valid digests, a sane count, and
 * sizes within `limits` (each file, and their sum).
 */
export function checkManifest(format: string, files: ManifestEntry[], limits: RegistryLimits = DEFAULT_LIMITS): ManifestEntry[] {
  if (files.length > MAX_MANIFEST_FILES) throw invalidArgument(`header.files lists ${files.length} files; at most ${MAX_MANIFEST_FILES} are allowed`);
  const seen = new Set<string>();
  let totalBytes = 0;
  for (const [index, file] of files.entries()) {
    checkManifestPath(file.path, `header.files[${index}].path`);
    checkSha256(file.sha256, `header.files[${index}].sha256`);
    checkArtifactSize(checkCount(file.sizeBytes, `header.files[${index}].size_bytes`), limits, `header.files[${index}].size_bytes`);
    totalBytes += file.sizeBytes;
    const folded = file.path.toLowerCase();
    if (seen.has(folded)) throw invalidArgument(`header.files lists '${file.path}' twice (paths must differ, ignoring case)`);
    seen.add(folded);
  }
  // A file and a directory of the same name cannot both be restored.
  for (const file of files) {
    const parts = file.path.toLowerCase().split('/');
    for (let depth = 1; depth < parts.length; depth++) {
      if (seen.has(parts.slice(0, depth).join('/'))) throw invalidArgument(`header.files has '${parts.slice(0, depth).join('/')}' as both a file and a directory`);
    }
  }
  if (totalBytes > limits.maxModelBytes) throw budgetExceeded('max_model_bytes (the sum of header.files[].size_bytes)', totalBytes, limits.maxModelBytes);
  if (format === 'safetensors' && !files.some((file) => file.path.endsWith('.safetensors'))) {
    throw invalidArgument("format 'safetensors' needs at least one *.safetensors file; use format 'directory' for other files");
  }
  return files;
}
