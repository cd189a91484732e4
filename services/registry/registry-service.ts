/**
 * The registry's gRPC API over a LocalStore: uploads verified before they become versions,
 * immutable version records, downloads that resume from an offset.
 */
import { readFile } from 'node:fs/promises';
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  RegistryService, type DownloadArtifactResponse, type GetVersionResponse, type ListModelsResponse,
  type ListVersionsResponse, type ModelSignature, type ModelVersion, type UploadHeader, type UploadVersionRequest,
  type UploadVersionResponse,
} from '../protocol/generated/nexus/registry/v1/registry.ts';
import { decodeModel, signatureOf } from '../onnx/index.ts';
import { clientStream, serverStream, unary } from '../rpc/handlers.ts';
import { invalidArgument, notFound } from '../rpc/errors.ts';
import type { Logger } from '../telemetry/logger.ts';
import { metrics } from '../telemetry/metrics.ts';
import { checkModelName, checkSha256 } from './names.ts';
import type { LocalStore } from './store/local-store.ts';

/** Artifact formats the registry can read a signature from. */
export const SUPPORTED_FORMATS = ['onnx'] as const;
/** Size of each streamed download chunk, in bytes. */
export const DOWNLOAD_CHUNK_BYTES = 1024 * 1024;
const MAX_TAGS = 64;

function checkHeader(header: UploadHeader): UploadHeader {
  checkModelName(header.modelName, 'header.model_name');
  if (!(SUPPORTED_FORMATS as readonly string[]).includes(header.format)) {
    throw invalidArgument(`header.format '${header.format}' is not supported; use one of: ${SUPPORTED_FORMATS.join(', ')}`);
  }
  if (header.sha256) checkSha256(header.sha256, 'header.sha256');
  if (Object.keys(header.tags).length > MAX_TAGS) throw invalidArgument(`header.tags has more than ${MAX_TAGS} entries`);
  return header;
}

/** Reads the artifact's input/output signature; a file that is not a valid model is refused. */
async function readSignature(format: string, path: string): Promise<ModelSignature> {
  if (format !== 'onnx') throw invalidArgument(`cannot read a signature from format '${format}'`);
  const signature = signatureOf(decodeModel(await readFile(path)));
  if (signature.inputs.length === 0) throw invalidArgument('the ONNX graph has no inputs');
  return signature;
}

/** The chunks of an upload stream after its header; anything but a chunk there is refused. */
async function* chunksOf(messages: AsyncIterator<UploadVersionRequest>): AsyncGenerator<Uint8Array> {
  for (;;) {
    const next = await messages.next();
    if (next.done) return;
    if (next.value.header) throw invalidArgument('a second header arrived mid-upload; send the header once, first');
    if (next.value.chunk) yield next.value.chunk;
  }
}

export function createRegistryService(store: LocalStore, logger: Logger): UntypedServiceImplementation {
  return {
    uploadVersion: clientStream<UploadVersionRequest, UploadVersionResponse>('UploadVersion', logger, async (call) => {
      const messages = (call as AsyncIterable<UploadVersionRequest>)[Symbol.asyncIterator]();
      const first = await messages.next();
      if (first.done || !first.value.header) throw invalidArgument('the first message of an upload must be its header');
      const header = checkHeader(first.value.header);

      const blob = await store.writeBlob(chunksOf(messages), { sha256: header.sha256, sizeBytes: header.sizeBytes });
      if (blob.sizeBytes === 0) {
        await blob.discard();
        throw invalidArgument('the upload carried no bytes');
      }
      let signature: ModelSignature;
      try {
        signature = await readSignature(header.format, blob.existed ? store.blobPath(blob.sha256) : blob.tempPath);
      } catch (error) {
        await blob.discard();
        throw error;
      }
      await blob.commit();
      metrics.registryBytes.inc({ direction: 'up' }, blob.sizeBytes);

      const record = await store.createVersion<ModelVersion>(header.modelName, (version) => ({
        modelName: header.modelName,
        version,
        sha256: blob.sha256,
        sizeBytes: blob.sizeBytes,
        format: header.format,
        signature,
        lineage: header.lineage,
        tags: header.tags,
        creator: header.creator,
        createdAtUnixMs: Date.now(),
        batching: header.batching,
      }));
      logger.info({ model: record.modelName, version: record.version, sha256: record.sha256, bytes: record.sizeBytes }, 'version created');
      return { version: record, deduplicated: blob.existed };
    }),

    getVersion: unary('GetVersion', logger, async (request: { modelName: string; version: number }): Promise<GetVersionResponse> => {
      checkModelName(request.modelName);
      const record = await store.readVersion<ModelVersion>(request.modelName, request.version);
      if (!record) {
        const which = request.version === 0 ? 'any version' : `version ${request.version}`;
        throw notFound(`model '${request.modelName}' has no ${which}`);
      }
      return { version: record };
    }),

    listVersions: unary('ListVersions', logger, async (request: { modelName: string }): Promise<ListVersionsResponse> => {
      checkModelName(request.modelName);
      const versions = await store.listVersions<ModelVersion>(request.modelName);
      if (versions.length === 0) throw notFound(`model '${request.modelName}' does not exist`);
      return { versions };
    }),

    listModels: unary('ListModels', logger, async (): Promise<ListModelsResponse> => {
      const latest: ModelVersion[] = [];
      for (const name of await store.listModelNames()) {
        const record = await store.readVersion<ModelVersion>(name, 0);
        if (record) latest.push(record);
      }
      return { latest };
    }),

    downloadArtifact: serverStream('DownloadArtifact', logger, async (request: { sha256: string; offset: number }, call) => {
      checkSha256(request.sha256);
      const total = await store.blobSize(request.sha256);
      if (request.offset > total) throw invalidArgument(`offset ${request.offset} is past the artifact's end (${total} bytes)`);
      let offset = request.offset;
      for await (const chunk of store.readBlob(request.sha256, offset, DOWNLOAD_CHUNK_BYTES)) {
        if (call.cancelled) return;
        const message: DownloadArtifactResponse = { chunk, offset, totalSizeBytes: total };
        offset += chunk.byteLength;
        metrics.registryBytes.inc({ direction: 'down' }, chunk.byteLength);
        // Respect the client's pace: wait for the transport to drain before reading more.
        if (!call.write(message)) await new Promise((resume) => call.once('drain', resume));
      }
    }),
  };
}

export { RegistryService };
