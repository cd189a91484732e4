/**
 * A Hugging Face checkpoint directory as the registry stores it (a manifest of files, each a
 * blob named by its sha256): config.json, the weights in model.safetensors or in shards listed
 * by model.safetensors.index.json, and an optional generation_config.json. The config is read
 * first, on its own, so the model's GPU bytes are known (and reserved) before any weight is
 * converted; the weight files are then checked strictly (safetensors.ts), the index against the
 * shards it names.
 */
import { failedPrecondition, invalidArgument } from '../../domain/index.ts';
import { parseJsonObject, readEosTokenIds, readModelConfig, type ModelConfig } from './model-config.ts';
import { parseSafetensors, type SafetensorsFile, type TensorEntry } from './safetensors.ts';

/** The files of a checkpoint directory: their paths, and their verified bytes on demand. */
export interface CheckpointFiles {
  readonly paths: readonly string[];
  /** The bytes of one of `paths`. */
  read(path: string): Promise<Uint8Array>;
}

/** A file of a stored version (ManifestEntry's fields that matter here). */
export interface StoredFile {
  readonly path: string;
  readonly sha256: string;
}

/** The checkpoint of a directory version whose files are fetched (and verified) by digest. */
export function storedCheckpoint(files: readonly StoredFile[], fetchBlob: (sha256: string) => Promise<Uint8Array>): CheckpointFiles {
  const byPath = new Map(files.map((file) => [file.path, file.sha256]));
  return {
    paths: files.map((file) => file.path),
    read(path) {
      const sha256 = byPath.get(path);
      if (sha256 === undefined) return Promise.reject(invalidArgument(`the checkpoint has no file '${path}'`));
      return fetchBlob(sha256);
    },
  };
}

const SINGLE_FILE = 'model.safetensors';
const INDEX_FILE = 'model.safetensors.index.json';

export interface CheckpointConfig {
  readonly config: ModelConfig;
  /** generation_config.json's eos_token_id ([] without the file). */
  readonly eosTokenIds: readonly number[];
}

/** config.json (required) and generation_config.json (optional). */
export async function readCheckpointConfig(files: CheckpointFiles): Promise<CheckpointConfig> {
  if (!files.paths.includes('config.json')) throw failedPrecondition('the checkpoint has no config.json; a text-generation model is a Hugging Face checkpoint directory');
  const config = readModelConfig(await files.read('config.json'));
  const generation = files.paths.includes('generation_config.json') ? await files.read('generation_config.json') : undefined;
  return { config, eosTokenIds: readEosTokenIds(generation, config.vocabSize) };
}

/** Every tensor of the checkpoint by name, with the file holding it. */
export type CheckpointTensors = ReadonlyMap<string, { file: SafetensorsFile; entry: TensorEntry }>;

/** Which shard holds each tensor, from model.safetensors.index.json. */
function readIndex(bytes: Uint8Array, paths: readonly string[]): Map<string, string> {
  const weightMap = parseJsonObject(INDEX_FILE, bytes).weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw invalidArgument(`${INDEX_FILE}: 'weight_map' must be an object of tensor name to file name`);
  }
  const shardOf = new Map<string, string>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || !shard.endsWith('.safetensors') || !paths.includes(shard)) {
      throw invalidArgument(`${INDEX_FILE}: tensor '${tensor}' is mapped to ${JSON.stringify(shard)}, which is not a .safetensors file of the checkpoint`);
    }
    shardOf.set(tensor, shard);
  }
  return shardOf;
}

/** The weight tensors: model.safetensors, else the shards model.safetensors.index.json lists, each checked. */
export async function readCheckpointTensors(files: CheckpointFiles): Promise<CheckpointTensors> {
  const tensors = new Map<string, { file: SafetensorsFile; entry: TensorEntry }>();
  if (files.paths.includes(SINGLE_FILE)) {
    const file = parseSafetensors(SINGLE_FILE, await files.read(SINGLE_FILE));
    for (const [name, entry] of file.tensors) tensors.set(name, { file, entry });
    return tensors;
  }
  if (!files.paths.includes(INDEX_FILE)) {
    throw failedPrecondition(`the checkpoint has neither ${SINGLE_FILE} nor ${INDEX_FILE}; its weights must be safetensors`);
  }
  const shardOf = readIndex(await files.read(INDEX_FILE), files.paths);
  for (const shard of new Set(shardOf.values())) {
    const file = parseSafetensors(shard, await files.read(shard));
    for (const [name, entry] of file.tensors) {
      if (shardOf.get(name) !== shard) {
        throw invalidArgument(`${shard} holds tensor '${name}', which ${INDEX_FILE} maps to ${JSON.stringify(shardOf.get(name) ?? null)}`);
      }
      tensors.set(name, { file, entry });
    }
  }
  for (const [name, shard] of shardOf) {
    if (!tensors.has(name)) throw invalidArgument(`${INDEX_FILE} maps tensor '${name}' to ${shard}, which does not hold it`);
  }
  return tensors;
}
