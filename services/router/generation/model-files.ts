/**
 * The tokenizer of a served text-generation version, made from its checkpoint's files: the
 * version record lists each file of the directory with its sha256, and the registry serves any
 * stored blob by digest (DownloadArtifact), so the router reads tokenizer.json,
 * tokenizer_config.json, generation_config.json and config.json without the weights. Each
 * download is verified against its digest. Tokenizers are kept per version (records never change).
 */
import { createHash } from 'node:crypto';
import { Metadata } from '@grpc/grpc-js';
import type { ModelVersion, RegistryClient } from '../../protocol/generated/nexus/registry/v1/registry.ts';
import { ErrorCode, failedPrecondition, modelKeyOf, NexusError, type ModelKey } from '../../domain/index.ts';
import { injectIntoMetadata } from '../../telemetry/tracing.ts';
import { TextTokenizer } from './text-tokenizer.ts';

/** Largest tokenizer file read, in bytes (Llama 3's tokenizer.json is 9 MB). */
const MAX_TOKENIZER_FILE_BYTES = 64 * 1024 * 1024;
/** Versions whose tokenizer is kept. */
const MAX_CACHED_TOKENIZERS = 32;
const DOWNLOAD_DEADLINE_MS = 30_000;

/** Reads a stored blob whole. */
export interface BlobReader {
  read(sha256: string, maxBytes: number): Promise<Uint8Array>;
}

/** The registry's DownloadArtifact as a BlobReader; a failure is UNAVAILABLE unless the registry said NOT_FOUND. */
export function grpcBlobReader(client: RegistryClient): BlobReader {
  return {
    read: (sha256, maxBytes) => new Promise((resolve, reject) => {
      const parts: Uint8Array[] = [];
      let bytes = 0;
      let failed = false;
      const call = client.downloadArtifact({ sha256, offset: 0 }, injectIntoMetadata(new Metadata()), { deadline: Date.now() + DOWNLOAD_DEADLINE_MS });
      const fail = (error: NexusError) => {
        if (failed) return;
        failed = true;
        call.cancel();
        reject(error);
      };
      call.on('data', (message: { chunk: Uint8Array; totalSizeBytes: number }) => {
        if (message.totalSizeBytes > maxBytes) {
          fail(failedPrecondition(`blob ${sha256} has ${message.totalSizeBytes} bytes, more than the ${maxBytes} a tokenizer file may have`));
          return;
        }
        parts.push(message.chunk);
        bytes += message.chunk.byteLength;
      });
      call.on('error', (error) => {
        const coded = NexusError.from(error);
        fail(coded.code === ErrorCode.NOT_FOUND ? coded : new NexusError(ErrorCode.UNAVAILABLE, `the registry could not be read: ${coded.message}`));
      });
      call.on('end', () => {
        if (!failed) resolve(Buffer.concat(parts, bytes));
      });
    }),
  };
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json', 'config.json'] as const;

export class TokenizerCache {
  private readonly reader: BlobReader;
  private readonly tokenizers = new Map<ModelKey, Promise<TextTokenizer>>();

  constructor(reader: BlobReader) {
    this.reader = reader;
  }

  /** The version's tokenizer, read once; FAILED_PRECONDITION when the version has no usable tokenizer.json. */
  tokenizerOf(version: ModelVersion): Promise<TextTokenizer> {
    const key = modelKeyOf(version);
    const known = this.tokenizers.get(key);
    if (known) return known;
    const made = this.make(version);
    this.tokenizers.set(key, made);
    // A failed read (the registry was down) is tried again by the next request.
    made.catch(() => {
      if (this.tokenizers.get(key) === made) this.tokenizers.delete(key);
    });
    if (this.tokenizers.size > MAX_CACHED_TOKENIZERS) this.tokenizers.delete(this.tokenizers.keys().next().value!);
    return made;
  }

  private async make(version: ModelVersion): Promise<TextTokenizer> {
    const texts = new Map<string, string>();
    for (const name of TOKENIZER_FILES) {
      const entry = version.files.find((file) => file.path === name);
      if (!entry) continue;
      const bytes = await this.reader.read(entry.sha256, MAX_TOKENIZER_FILE_BYTES);
      const actual = createHash('sha256').update(bytes).digest('hex');
      if (actual !== entry.sha256) throw new NexusError(ErrorCode.DATA_LOSS, `${name} of ${version.modelName} version ${version.version} hashes to ${actual}, not ${entry.sha256}`);
      texts.set(name, Buffer.from(bytes).toString('utf8'));
    }
    const tokenizerJson = texts.get('tokenizer.json');
    if (tokenizerJson === undefined) {
      throw failedPrecondition(`${version.modelName} version ${version.version} has no tokenizer.json; store the checkpoint directory with its tokenizer files`);
    }
    return TextTokenizer.fromFiles({
      tokenizerJson,
      tokenizerConfigJson: texts.get('tokenizer_config.json'),
      generationConfigJson: texts.get('generation_config.json'),
      configJson: texts.get('config.json'),
    });
  }
}
