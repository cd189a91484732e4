/**
 * A DNS server for the multi-host tests, on UDP, that answers one name: A records for the
 * addresses the test sets (what a headless Service's name does as pods come and go), an empty
 * answer for AAAA, NXDOMAIN for every other name. Records have a TTL of 0, so nothing caches them.
 */
import { createSocket, type Socket } from 'node:dgram';

const TYPE_A = 1;
const TYPE_AAAA = 28;
const CLASS_IN = 1;

/** The question of a query: its name, type, and where the question section ends. */
function questionOf(query: Buffer): { name: string; type: number; end: number } | undefined {
  if (query.length < 12 || query.readUInt16BE(4) !== 1) return undefined;
  const labels: string[] = [];
  let at = 12;
  while (at < query.length && query[at] !== 0) {
    const length = query[at];
    if (length > 63 || at + 1 + length > query.length) return undefined;
    labels.push(query.subarray(at + 1, at + 1 + length).toString('ascii'));
    at += 1 + length;
  }
  if (at + 5 > query.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: query.readUInt16BE(at + 1), end: at + 5 };
}

/** The answer to `query`: its id and question, AA set, and A records of `addresses` when asked for A. */
export function answerTo(query: Buffer, name: string, addresses: readonly string[]): Buffer | undefined {
  const question = questionOf(query);
  if (!question) return undefined;
  const known = question.name === name.toLowerCase();
  const records = known && question.type === TYPE_A ? addresses : [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  // QR, the query's opcode and RD, AA; RCODE 3 (NXDOMAIN) for a name we do not serve.
  const flags = 0x8000 | (query.readUInt16BE(2) & 0x7900) | 0x0400 | (known ? 0 : 3);
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(records.length, 6);
  const answers = records.map((address) => {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    record.writeUInt16BE(TYPE_A, 2);
    record.writeUInt16BE(CLASS_IN, 4);
    record.writeUInt32BE(0, 6);
    record.writeUInt16BE(4, 10);
    address.split('.').forEach((octet, index) => record.writeUInt8(Number(octet), 12 + index));
    return record;
  });
  return Buffer.concat([header, query.subarray(12, question.end), ...answers]);
}

export interface DnsServer {
  /** The A records of the name from now on. */
  addresses: string[];
  /** Queries answered, by type (A, AAAA). */
  readonly queries: { A: number; AAAA: number };
  close(): Promise<void>;
}

/** Serves `name` on `host`:53. */
export async function startDnsServer(host: string, name: string, addresses: string[]): Promise<DnsServer> {
  const socket: Socket = createSocket('udp4');
  const server: DnsServer = {
    addresses,
    queries: { A: 0, AAAA: 0 },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
  socket.on('message', (query, peer) => {
    const type = questionOf(query)?.type;
    if (type === TYPE_A) server.queries.A += 1;
    if (type === TYPE_AAAA) server.queries.AAAA += 1;
    const answer = answerTo(query, name, server.addresses);
    if (answer) socket.send(answer, peer.port, peer.address);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(53, host, () => resolve());
  });
  return server;
}
