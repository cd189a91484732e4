/**
 * What a directory model is, decided from its manifest and tags alone (pure): an ONNX model
 * whose weights may live in external data files beside it, or a Hugging Face checkpoint in
 * safetensors for text generation. The ONNX entry point is the one .onnx file at the
 * directory's root, or the one the tag ONNX_ENTRY_TAG names; a directory holding both an ONNX
 * model and a safetensors checkpoint, several root .onnx files without the tag, or neither kind
 * is FAILED_PRECONDITION saying which files it found and what would be right. The registry
 * reads an ONNX directory's signature from its entry; the executor loads it by the same rule.
 */
import { failedPrecondition } from './errors.ts';

/** The tag naming a directory version's ONNX entry point, relative to its root ("onnx/model.onnx"). */
export const ONNX_ENTRY_TAG = 'nexus.onnx_entry';

/** What a directory version holds: an ONNX model (its entry file) or a text-generation checkpoint. */
export type DirectoryKind<File extends { readonly path: string }> = { readonly kind: 'onnx'; readonly entry: File } | { readonly kind: 'checkpoint' };

const isSafetensorsFile = (path: string) => path.endsWith('.safetensors') || path.endsWith('.safetensors.index.json');

/** Which kind of model a directory version is, from its files and tags. */
export function classifyDirectory<File extends { readonly path: string }>(files: readonly File[], tags: Readonly<Record<string, string>>): DirectoryKind<File> {
  const declared = tags[ONNX_ENTRY_TAG];
  if (declared !== undefined && declared !== '') {
    const entry = files.find((file) => file.path === declared);
    if (!entry || !declared.endsWith('.onnx')) {
      throw failedPrecondition(`tag ${ONNX_ENTRY_TAG}='${declared}' names no .onnx file of the version; it holds ${listed(files.map((file) => file.path))}`);
    }
    return { kind: 'onnx', entry };
  }
  const rootModels = files.filter((file) => !file.path.includes('/') && file.path.endsWith('.onnx'));
  const checkpointFiles = files.filter((file) => isSafetensorsFile(file.path)).map((file) => file.path);
  if (rootModels.length > 0 && checkpointFiles.length > 0) {
    throw failedPrecondition(`the directory holds both an ONNX model (${listed(rootModels.map((file) => file.path))}) and a safetensors checkpoint `
      + `(${listed(checkpointFiles)}); store them as separate versions, or name the ONNX entry point with the tag ${ONNX_ENTRY_TAG}`);
  }
  if (rootModels.length > 1) {
    throw failedPrecondition(`the directory holds ${rootModels.length} ONNX models at its root (${listed(rootModels.map((file) => file.path))}); `
      + `name the entry point with the tag ${ONNX_ENTRY_TAG}`);
  }
  if (rootModels.length === 1) return { kind: 'onnx', entry: rootModels[0] };
  if (checkpointFiles.length > 0) return { kind: 'checkpoint' };
  throw failedPrecondition(`the directory holds neither an ONNX model (one .onnx file at its root, or one named by the tag ${ONNX_ENTRY_TAG}) `
    + `nor a safetensors checkpoint (config.json with model.safetensors or its shards); it holds ${listed(files.map((file) => file.path))}`);
}

/** "'a.onnx', 'b.onnx'" (the first ten, then a count). */
function listed(paths: readonly string[]): string {
  if (paths.length === 0) return 'no files';
  const shown = paths.slice(0, 10).map((path) => `'${path}'`).join(', ');
  return paths.length > 10 ? `${shown} and ${paths.length - 10} more` : shown;
}

