/**
 * A small in-memory server speaking the Google Cloud Storage JSON API for exactly the calls the
 * registry's GCS backend makes through @google-cloud/storage: object metadata, media download
 * (by generation, with Range), listing (prefix, startOffset, pages), delete, rewrite (copy),
 * multipart uploads for records and resumable uploads in chunks for blobs. Generation
 * preconditions (`ifGenerationMatch`, 0 meaning "must not exist") are enforced atomically, as GCS
 * does: a resumable upload's precondition is checked when its last chunk finalises it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';

interface StoredObject {
  data: Buffer;
  generation: number;
  updated: Date;
  contentType: string;
}

interface Session {
  bucket: string;
  name: string;
  ifGenerationMatch?: number;
  contentType: string;
  parts: Buffer[];
  received: number;
}

export interface FakeGcs {
  /** http://127.0.0.1:<port>, the apiEndpoint to give the client. */
  endpoint: string;
  /** Writes refused for a failed generation precondition so far. */
  preconditionFailures: number;
  /** Resumable sessions opened but never finalised (abandoned uploads). */
  openSessions(): number;
  /** Names of every object in a bucket (for assertions). */
  names(bucket: string): string[];
  /** Replaces an object's bytes in place, keeping its generation (to simulate damage at rest). */
  corrupt(bucket: string, name: string, data: Buffer): void;
  close(): Promise<void>;
}

const PAGE_SIZE = 3; // small, so the client's pagination is exercised

export async function startFakeGcs(buckets: string[]): Promise<FakeGcs> {
  const objects = new Map<string, Map<string, StoredObject>>(buckets.map((bucket) => [bucket, new Map()]));
  const sessions = new Map<string, Session>();
  let nextGeneration = 1_000_000;
  let preconditionFailures = 0;
  let endpoint = '';

  const resource = (bucket: string, name: string, object: StoredObject) => ({
    kind: 'storage#object',
    id: `${bucket}/${name}/${object.generation}`,
    name,
    bucket,
    generation: String(object.generation),
    metageneration: '1',
    contentType: object.contentType,
    size: String(object.data.byteLength),
    updated: object.updated.toISOString(),
    timeCreated: object.updated.toISOString(),
  });

  const sendJson = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    response.end(JSON.stringify(body));
  };
  const sendError = (response: ServerResponse, status: number, reason: string, message: string) =>
    sendJson(response, status, { error: { code: status, message, errors: [{ reason, message, domain: 'global' }] } });

  /** Creates or replaces an object if the precondition holds; false (and a 412 sent) when it does not. */
  const commit = (response: ServerResponse, bucket: string, name: string, data: Buffer, contentType: string, ifGenerationMatch?: number) => {
    const store = objects.get(bucket)!;
    const current = store.get(name);
    if (ifGenerationMatch !== undefined && (current?.generation ?? 0) !== ifGenerationMatch) {
      preconditionFailures += 1;
      sendError(response, 412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
      return;
    }
    const object: StoredObject = { data, generation: nextGeneration++, updated: new Date(), contentType };
    store.set(name, object);
    sendJson(response, 200, resource(bucket, name, object));
  };

  const readBody = async (request: IncomingMessage) => {
    const parts: Buffer[] = [];
    for await (const chunk of request) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  };

  const precondition = (url: URL) => (url.searchParams.has('ifGenerationMatch') ? Number(url.searchParams.get('ifGenerationMatch')) : undefined);

  /** Splits a multipart/related body into its JSON metadata and its media. */
  const parseMultipart = (body: Buffer, contentType: string) => {
    const boundary = /boundary="?([^";]+)"?/.exec(contentType)?.[1];
    if (!boundary) throw new Error('no multipart boundary');
    const delimiter = Buffer.from(`--${boundary}`);
    const parts: Buffer[] = [];
    let at = body.indexOf(delimiter);
    while (at >= 0) {
      const next = body.indexOf(delimiter, at + delimiter.length);
      if (next < 0) break;
      parts.push(body.subarray(at + delimiter.length, next));
      at = next;
    }
    const split = (part: Buffer) => {
      const headerEnd = part.indexOf('\r\n\r\n');
      return { headers: part.subarray(0, headerEnd).toString(), content: part.subarray(headerEnd + 4, part.byteLength - 2) };
    };
    const [metadataPart, mediaPart] = parts.map(split);
    return { metadata: JSON.parse(metadataPart.content.toString()) as { name?: string; contentType?: string }, media: mediaPart.content };
  };

  const handle = async (request: IncomingMessage, response: ServerResponse) => {
    const url = new URL(request.url ?? '/', endpoint);
    const path = url.pathname;
    let match: RegExpExecArray | null;

    if ((match = /^\/upload\/storage\/v1\/b\/([^/]+)\/o$/.exec(path))) {
      const bucket = decodeURIComponent(match[1]);
      if (!objects.has(bucket)) return sendError(response, 404, 'notFound', `bucket ${bucket} not found`);
      const uploadId = url.searchParams.get('upload_id');
      if (request.method === 'POST' && url.searchParams.get('uploadType') === 'multipart') {
        const { metadata, media } = parseMultipart(await readBody(request), String(request.headers['content-type']));
        const name = url.searchParams.get('name') ?? metadata.name!;
        return commit(response, bucket, name, Buffer.from(media), metadata.contentType ?? 'application/octet-stream', precondition(url));
      }
      if (request.method === 'POST' && url.searchParams.get('uploadType') === 'resumable' && !uploadId) {
        const body = await readBody(request);
        const metadata = body.byteLength > 0 ? JSON.parse(body.toString()) as { name?: string; contentType?: string } : {};
        const id = randomUUID();
        sessions.set(id, {
          bucket, name: url.searchParams.get('name') ?? metadata.name!, ifGenerationMatch: precondition(url),
          contentType: metadata.contentType ?? String(request.headers['x-upload-content-type'] ?? 'application/octet-stream'),
          parts: [], received: 0,
        });
        response.writeHead(200, { location: `${endpoint}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&upload_id=${id}` });
        return response.end();
      }
      if (request.method === 'PUT' && uploadId) {
        const session = sessions.get(uploadId);
        if (!session) return sendError(response, 404, 'notFound', 'no such upload session');
        const body = await readBody(request);
        const range = String(request.headers['content-range'] ?? '');
        const parsed = /^bytes (\*|(\d+)-(\d+))\/(\*|\d+)$/.exec(range);
        if (!parsed) return sendError(response, 400, 'invalid', `bad Content-Range '${range}'`);
        if (parsed[1] !== '*') {
          const start = Number(parsed[2]);
          if (start !== session.received) return sendError(response, 400, 'invalid', `chunk starts at ${start}, ${session.received} received`);
          session.parts.push(body);
          session.received += body.byteLength;
        }
        const total = parsed[4] === '*' ? undefined : Number(parsed[4]);
        if (total !== undefined && total === session.received) {
          sessions.delete(uploadId);
          return commit(response, session.bucket, session.name, Buffer.concat(session.parts), session.contentType, session.ifGenerationMatch);
        }
        response.writeHead(308, session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {});
        return response.end();
      }
      return sendError(response, 400, 'invalid', `unsupported upload ${request.method} ${url.search}`);
    }

    if ((match = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)\/rewriteTo\/b\/([^/]+)\/o\/(.+)$/.exec(path)) && request.method === 'POST') {
      await readBody(request);
      const [source, target] = [[match[1], match[2]], [match[3], match[4]]].map(([bucket, name]) => [decodeURIComponent(bucket), decodeURIComponent(name)]);
      const object = objects.get(source[0])?.get(source[1]);
      if (!object) return sendError(response, 404, 'notFound', 'source object not found');
      const store = objects.get(target[0])!;
      const ifGenerationMatch = precondition(url);
      if (ifGenerationMatch !== undefined && (store.get(target[1])?.generation ?? 0) !== ifGenerationMatch) {
        preconditionFailures += 1;
        return sendError(response, 412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
      }
      const copy: StoredObject = { data: object.data, generation: nextGeneration++, updated: new Date(), contentType: object.contentType };
      store.set(target[1], copy);
      return sendJson(response, 200, {
        kind: 'storage#rewriteResponse', totalBytesRewritten: String(copy.data.byteLength), objectSize: String(copy.data.byteLength),
        done: true, resource: resource(target[0], target[1], copy),
      });
    }

    if ((match = /^\/storage\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(path))) {
      const bucket = decodeURIComponent(match[1]);
      const name = decodeURIComponent(match[2]);
      const store = objects.get(bucket);
      const object = store?.get(name);
      const generation = url.searchParams.get('generation');
      if (!object || (generation && Number(generation) !== object.generation)) return sendError(response, 404, 'notFound', `No such object: ${bucket}/${name}`);
      if (request.method === 'DELETE') {
        store!.delete(name);
        response.writeHead(204);
        return response.end();
      }
      if (request.method !== 'GET') return sendError(response, 405, 'invalid', 'method not allowed');
      if (url.searchParams.get('alt') !== 'media') return sendJson(response, 200, resource(bucket, name, object));
      const rangeHeader = /^bytes=(\d+)-(\d*)$/.exec(String(request.headers.range ?? ''));
      const headers = { 'content-type': object.contentType, 'x-goog-generation': String(object.generation) };
      if (!rangeHeader) {
        response.writeHead(200, { ...headers, 'content-length': object.data.byteLength });
        return response.end(object.data);
      }
      const start = Number(rangeHeader[1]);
      const end = rangeHeader[2] ? Math.min(Number(rangeHeader[2]), object.data.byteLength - 1) : object.data.byteLength - 1;
      if (start >= object.data.byteLength) return sendError(response, 416, 'requestedRangeNotSatisfiable', 'range not satisfiable');
      response.writeHead(206, { ...headers, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${object.data.byteLength}` });
      return response.end(object.data.subarray(start, end + 1));
    }

    if ((match = /^\/storage\/v1\/b\/([^/]+)\/o$/.exec(path)) && request.method === 'GET') {
      const bucket = decodeURIComponent(match[1]);
      const store = objects.get(bucket);
      if (!store) return sendError(response, 404, 'notFound', `bucket ${bucket} not found`);
      const prefix = url.searchParams.get('prefix') ?? '';
      const startOffset = url.searchParams.get('startOffset') ?? '';
      const after = url.searchParams.get('pageToken') ?? '';
      const names = [...store.keys()].filter((name) => name.startsWith(prefix) && name >= startOffset && name > after).sort();
      const pageSize = Math.min(PAGE_SIZE, Number(url.searchParams.get('maxResults') ?? PAGE_SIZE));
      const page = names.slice(0, pageSize);
      return sendJson(response, 200, {
        kind: 'storage#objects',
        items: page.map((name) => resource(bucket, name, store.get(name)!)),
        ...(names.length > pageSize ? { nextPageToken: page.at(-1) } : {}),
      });
    }

    return sendError(response, 404, 'notFound', `no route for ${request.method} ${path}`);
  };

  const server: Server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) sendError(response, 500, 'backendError', String(error));
      else response.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    endpoint,
    get preconditionFailures() { return preconditionFailures; },
    openSessions: () => sessions.size,
    names: (bucket) => [...(objects.get(bucket)?.keys() ?? [])].sort(),
    corrupt: (bucket, name, data) => {
      const object = objects.get(bucket)!.get(name)!;
      object.data = data;
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
