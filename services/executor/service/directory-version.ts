/**
 * The files of a stored ONNX directory version a load needs (pure, no I/O); what the directory
 * is, ONNX model or checkpoint, is domain/directory-model.ts's decision.
 *
 * The external data files an ONNX model needs are found from its tensors' locations, each one
 * checked (compiler/external-data.ts: relative, no '..') and resolved against the entry's own
 * folder, then looked up in the manifest: a location the version does not hold is
 * FAILED_PRECONDITION naming the tensor. Only those files are fetched for the load.
 */
import { posix } from 'node:path';
import { failedPrecondition, invalidArgument } from '../../domain/errors.ts';
import type { ModelProto } from '../../protocol/generated/onnx/onnx.ts';
import { parseExternalLocation, usesExternalData } from '../compiler/external-data.ts';
import type { StoredFile } from '../llm/checkpoint.ts';

/**
 * Refuses a manifest path that could leave the folder it is placed in: empty, absolute, with a
 * NUL byte, a backslash, or an empty, '.' or '..' component (INVALID_ARGUMENT naming it).
 */
export function checkStoredPath(path: string): void {
  const components = path.split('/');
  if (path === '' || path.includes('\0') || path.includes('\\') || path.startsWith('/')
    || components.some((component) => component === '' || component === '.' || component === '..')) {
    throw invalidArgument(`stored file path ${JSON.stringify(path)} is not a relative path of plain components inside the model directory`);
  }
}

/**
 * The manifest files the model's external data lives in (each once), each location resolved
 * against the folder of `entryPath`; FAILED_PRECONDITION naming the tensor for a location the
 * version does not hold, INVALID_ARGUMENT for one that is absolute or climbs out.
 */
export function externalFilesOf(model: ModelProto, entryPath: string, files: readonly StoredFile[]): StoredFile[] {
  const graph = model.graph!;
  const tensors = [...graph.initializer, ...graph.node.flatMap((node) => node.attribute.flatMap((attribute) => (attribute.t ? [attribute.t] : [])))];
  const byPath = new Map(files.map((file) => [file.path, file]));
  const needed = new Map<string, StoredFile>();
  const folder = posix.dirname(entryPath);
  for (const tensor of tensors) {
    if (!usesExternalData(tensor)) continue;
    const { location } = parseExternalLocation(tensor);
    const path = posix.normalize(posix.join(folder, location));
    const file = byPath.get(path);
    if (!file) {
      throw failedPrecondition(`tensor '${tensor.name}': external data file '${location}' (${path} in the version) is not one of the version's files`);
    }
    needed.set(path, file);
  }
  return [...needed.values()];
}
