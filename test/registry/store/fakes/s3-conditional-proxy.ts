/**
 * s3rver stores objects faithfully but ignores S3's conditional writes (If-None-Match: *,
 * If-Match: <etag>), which are what keep several registries over one bucket consistent. This
 * proxy sits in front of it and enforces them the way S3 does: every write to a key is serialized
 * with the others to that key, the condition is checked against s3rver's current object (a HEAD),
 * and a failed condition is answered 412 PreconditionFailed without the write reaching s3rver.
 * So the registry's conditional-write logic is really exercised, losses included.
 */
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ConditionalProxy {
  /** http://127.0.0.1:<port>, the endpoint to give the S3 client. */
  endpoint: string;
  /** Conditional writes refused with 412 so far. */
  preconditionFailures: number;
  /** Conditional writes let through so far. */
  conditionalWrites: number;
  close(): Promise<void>;
}

export async function startConditionalProxy(upstreamPort: number): Promise<ConditionalProxy> {
  const locks = new Map<string, Promise<void>>();
  const stats = { preconditionFailures: 0, conditionalWrites: 0 };

  /** Runs `work` after every earlier write to `key` has finished. */
  const serialized = async (key: string, work: () => Promise<void>) => {
    const previous = locks.get(key) ?? Promise.resolve();
    const current = previous.then(work, work);
    const tail = current.catch(() => undefined);
    locks.set(key, tail);
    try {
      await current;
    } finally {
      if (locks.get(key) === tail) locks.delete(key);
    }
  };

  const currentEtag = (path: string) => new Promise<string | undefined>((resolve, reject) => {
    const head = request({ host: '127.0.0.1', port: upstreamPort, method: 'HEAD', path }, (response) => {
      response.resume();
      resolve(response.statusCode === 200 ? String(response.headers.etag ?? '').replace(/"/g, '') : undefined);
    });
    head.on('error', reject);
    head.end();
  });

  const forward = (incoming: IncomingMessage, outgoing: ServerResponse) => new Promise<void>((resolve) => {
    const upstream = request({ host: '127.0.0.1', port: upstreamPort, method: incoming.method, path: incoming.url, headers: incoming.headers }, (response) => {
      outgoing.writeHead(response.statusCode ?? 502, response.headers);
      response.pipe(outgoing);
      response.on('end', () => resolve());
      response.on('error', () => resolve());
    });
    upstream.on('error', () => {
      if (!outgoing.headersSent) outgoing.writeHead(502);
      outgoing.end();
      resolve();
    });
    incoming.pipe(upstream);
  });

  const refuse = (incoming: IncomingMessage, outgoing: ServerResponse, condition: string) => {
    stats.preconditionFailures += 1;
    incoming.resume();
    outgoing.writeHead(412, { 'content-type': 'application/xml' });
    outgoing.end(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message><Condition>${condition}</Condition></Error>`);
  };

  const server: Server = createServer((incoming, outgoing) => {
    const url = new URL(incoming.url ?? '/', 'http://proxy');
    const segments = url.pathname.split('/').filter(Boolean);
    const isObjectWrite = segments.length >= 2 && (incoming.method === 'PUT' || incoming.method === 'POST' || incoming.method === 'DELETE');
    if (!isObjectWrite) {
      void forward(incoming, outgoing);
      return;
    }
    const ifNoneMatch = incoming.headers['if-none-match'];
    const ifMatch = incoming.headers['if-match'];
    // Parts of a multipart upload are not the object yet; only its completion is a write.
    const writesObject = !url.searchParams.has('uploadId') || incoming.method === 'POST';
    void serialized(url.pathname, async () => {
      if (writesObject && (ifNoneMatch || ifMatch)) {
        const etag = await currentEtag(url.pathname);
        if (ifNoneMatch === '*' && etag !== undefined) return refuse(incoming, outgoing, 'If-None-Match');
        if (ifMatch && (etag === undefined || String(ifMatch).replace(/"/g, '') !== etag)) return refuse(incoming, outgoing, 'If-Match');
        stats.conditionalWrites += 1;
      }
      await forward(incoming, outgoing);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    get preconditionFailures() { return stats.preconditionFailures; },
    get conditionalWrites() { return stats.conditionalWrites; },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
