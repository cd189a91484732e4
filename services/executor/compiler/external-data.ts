/**
 * ONNX external data: a tensor whose bytes live in a file beside the model (TensorProto
 * data_location EXTERNAL, with "location", "offset" and "length" entries), as exporters write
 * models whose weights pass protobuf's 2 GiB limit. The model then is a directory: the .onnx
 * file and its weight files.
 *
 * Every location is untrusted. It must be a relative path that stays inside the model
 * directory: absolute paths and '..' components are INVALID_ARGUMENT, and a path that resolves
 * (through symlinks) outside the directory is FAILED_PRECONDITION, each naming the tensor. The
 * range is checked against the file's size before anything is read, and each tensor is read
 * into its own buffer of exactly its length, never a whole file into one, so a model's weights
 * may pass 2 GiB as long as each tensor fits one typed array (and the GPU's binding size).
 *
 * The decisions (parsing the entries, checking a location and a range) are pure; the directory
 * reader is the only I/O.
 */
import { closeSync, fstatSync, openSync, readSync, realpathSync } from 'node:fs';
import { isAbsolute, join, sep } from 'node:path';
import { failedPrecondition, invalidArgument } from '../../domain/errors.ts';
import { ModelProto, TensorProto_DataLocation, type TensorProto } from '../../protocol/generated/onnx/onnx.ts';
import { BYTES_PER_ELEMENT, datatypeOfOnnxCode, elementCount } from '../../onnx/datatypes.ts';

/** Where one tensor's bytes are: a file of the model directory and a byte range in it. */
export interface ExternalLocation {
  location: string;
  offset: number;
  /** The byte count; undefined means "to the end of the file" (the ONNX default). */
  length: number | undefined;
}

/** Reads byte ranges of the files of one model directory. */
export interface ExternalDataSource {
  /** The size of `location` in bytes; throws naming `tensorName` if it is missing or escapes. */
  sizeOf(location: string, tensorName: string): number;
  /** Exactly `length` bytes from `offset` of `location` (already checked to lie in the file). */
  read(location: string, offset: number, length: number): Uint8Array;
}

export function usesExternalData(tensor: TensorProto): boolean {
  return tensor.dataLocation === TensorProto_DataLocation.EXTERNAL;
}

function nonNegativeInteger(tensorName: string, key: string, value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw invalidArgument(`tensor '${tensorName}': external data '${key}' is '${value}', not a non-negative integer`);
  }
  return Number(value);
}

/** Refuses a location that is empty, absolute, or climbs out of the model directory. */
export function checkLocation(tensorName: string, location: string): void {
  if (location === '' || location.includes('\0')) {
    throw invalidArgument(`tensor '${tensorName}': external data location '${location}' is empty or holds a NUL byte`);
  }
  if (isAbsolute(location) || location.startsWith('/') || location.startsWith('\\') || /^[A-Za-z]:/.test(location)) {
    throw invalidArgument(`tensor '${tensorName}': external data location '${location}' is an absolute path; it must be relative to the model directory`);
  }
  if (location.split(/[\\/]/).includes('..')) {
    throw invalidArgument(`tensor '${tensorName}': external data location '${location}' has a '..' component; it must stay inside the model directory`);
  }
}

/** The tensor's location, offset and length entries; INVALID_ARGUMENT naming it for bad ones. */
export function parseExternalLocation(tensor: TensorProto): ExternalLocation {
  const entries = new Map(tensor.externalData.map((entry) => [entry.key, entry.value]));
  const location = entries.get('location');
  if (location === undefined) throw invalidArgument(`tensor '${tensor.name}' has external data without a 'location' entry`);
  checkLocation(tensor.name, location);
  const offset = entries.has('offset') ? nonNegativeInteger(tensor.name, 'offset', entries.get('offset')!) : 0;
  const length = entries.has('length') ? nonNegativeInteger(tensor.name, 'length', entries.get('length')!) : undefined;
  return { location, offset, length };
}

/**
 * The byte count to read for `tensor`: its declared length must equal what its dims and type
 * need, and offset + length must lie within the file's `fileSize` bytes.
 */
export function checkedRange(tensor: TensorProto, where: ExternalLocation, fileSize: number): number {
  const needed = elementCount(tensor.dims.map(Number)) * BYTES_PER_ELEMENT[datatypeOfOnnxCode(tensor.dataType)];
  const length = where.length ?? fileSize - where.offset;
  if (length !== needed) {
    throw invalidArgument(`tensor '${tensor.name}': external data of ${length} bytes, its shape [${tensor.dims.join(', ')}] needs ${needed}`);
  }
  if (where.offset + length > fileSize) {
    throw invalidArgument(
      `tensor '${tensor.name}': external data bytes ${where.offset}..${where.offset + length} lie past the end of '${where.location}' (${fileSize} bytes)`,
    );
  }
  return length;
}

/**
 * Replaces every external tensor of `model` (initializers and Constant-node tensors) by its
 * bytes as raw_data, read from `source`; the model is changed in place and returned.
 */
export function resolveExternalData(model: ModelProto, source: ExternalDataSource): ModelProto {
  const graph = model.graph!;
  const tensors = [...graph.initializer, ...graph.node.flatMap((node) => node.attribute.flatMap((attribute) => (attribute.t ? [attribute.t] : [])))];
  for (const tensor of tensors) {
    if (!usesExternalData(tensor)) continue;
    const where = parseExternalLocation(tensor);
    const length = checkedRange(tensor, where, source.sizeOf(where.location, tensor.name));
    tensor.rawData = source.read(where.location, where.offset, length);
    tensor.externalData = [];
    tensor.dataLocation = TensorProto_DataLocation.DEFAULT;
  }
  return model;
}

/** One read covers at most this much: readSync takes at most 2 GiB - 1 bytes per call. */
const READ_CHUNK_BYTES = 1 << 30;

/** The files of `directory`, each location confined to it after symlinks are followed. */
export function directoryExternalData(directory: string): ExternalDataSource {
  const root = realpathSync(directory);
  const resolve = (location: string, tensorName: string): string => {
    let real: string;
    try {
      real = realpathSync(join(root, location));
    } catch {
      throw failedPrecondition(`tensor '${tensorName}': external data file '${location}' is not in the model directory`);
    }
    if (!real.startsWith(root + sep)) {
      throw failedPrecondition(`tensor '${tensorName}': external data file '${location}' resolves outside the model directory`);
    }
    return real;
  };
  const resolved = new Map<string, string>();
  return {
    sizeOf(location, tensorName) {
      const path = resolve(location, tensorName);
      resolved.set(location, path);
      const descriptor = openSync(path, 'r');
      try {
        const stats = fstatSync(descriptor);
        if (!stats.isFile()) throw failedPrecondition(`tensor '${tensorName}': external data location '${location}' is not a regular file`);
        return stats.size;
      } finally {
        closeSync(descriptor);
      }
    },
    read(location, offset, length) {
      const bytes = new Uint8Array(length);
      // sizeOf resolved (and checked) the location before any read of it.
      const descriptor = openSync(resolved.get(location)!, 'r');
      try {
        for (let done = 0; done < length;) {
          const read = readSync(descriptor, bytes, done, Math.min(READ_CHUNK_BYTES, length - done), offset + done);
          if (read === 0) throw failedPrecondition(`external data file '${location}' ended while its bytes were read`);
          done += read;
        }
      } finally {
        closeSync(descriptor);
      }
      return bytes;
    },
  };
}
