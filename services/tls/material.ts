/**
 * The TLS directory: where a deployment's CA and each service's certificate live, how `nexus up`
 * fills it, and how a service loads its own part.
 *
 *   <dir>/ca.crt                         the CA every service trusts (one certificate or a bundle)
 *   <dir>/ca.key                         its private key (0600); only needed to issue certificates
 *   <dir>/<service>.crt, <service>.key   router, executor, registry (keys 0600)
 *
 * The directory is $NEXUS_HOME/tls by default, or --tls-dir / NEXUS_TLS_DIR. Bring your own: any
 * files with these names, signed by your CA (intermediates may follow the leaf in <service>.crt),
 * each carrying the URI SAN spiffe://nexusml/<service> and the names peers dial it by.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServiceIdentity } from '../auth/roles.ts';
import { parseCertificates, renewalReason, unusableReason } from './certificate-checks.ts';
import type { PemPair } from './pki.ts';

/**
 * The certificate maker, loaded only when something must be issued: @peculiar/x509 and its
 * dependencies cost every service process several MB it never uses when it only reads files.
 */
const pki = () => import('./pki.ts');

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
export const certFileOf = (service: ServiceIdentity) => `${service}.crt`;
export const keyFileOf = (service: ServiceIdentity) => `${service}.key`;

/** One service's part of the TLS directory, read and checked: what its credentials are made of. */
export interface ServiceMaterial {
  service: ServiceIdentity;
  dir: string;
  /** The CA certificate(s) peers are verified against. */
  caPem: Buffer;
  /** The service's certificate, PEM (intermediates may follow). */
  certPem: Buffer;
  keyPem: Buffer;
}

/** What `ensureServiceMaterial` did, for a log line. */
export interface MaterialReport {
  dir: string;
  createdAuthority: boolean;
  /** Each certificate issued this time, with why (missing, expiring, …). */
  issued: { service: ServiceIdentity; reason: string }[];
}

type ReadResult = { bytes: Buffer } | { missing: true } | { error: string };

async function readIfPresent(path: string): Promise<ReadResult> {
  try {
    return { bytes: await readFile(path) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { missing: true };
    return { error: `${code ?? 'error'}: ${(error as Error).message}` };
  }
}

/**
 * Writes a file whole or not at all (a temporary file renamed over it), so a service starting
 * meanwhile never reads half a key. `mode` 0600 for keys, 0644 for certificates.
 */
async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.${process.pid}.tmp`;
  await writeFile(temporary, text, { mode });
  // The mode given to writeFile passes through the umask; say it once more, exactly.
  await chmod(temporary, mode);
  await rename(temporary, path);
}

const KEY_MODE = 0o600;
const CERT_MODE = 0o644;

function parseKey(bytes: Buffer, path: string): KeyObject {
  try {
    return createPrivateKey(bytes);
  } catch (error) {
    throw new Error(`${path} is not a PEM private key (${(error as Error).message})`);
  }
}

function parseChain(bytes: Buffer, path: string): X509Certificate[] {
  let chain: X509Certificate[];
  try {
    chain = parseCertificates(bytes);
  } catch (error) {
    throw new Error(`${path} is not a PEM certificate (${(error as Error).message})`);
  }
  if (chain.length === 0) throw new Error(`${path} holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)`);
  return chain;
}

/** The CA as found: its certificates, and its key when the directory has one (needed to issue). */
async function readAuthority(dir: string, now: Date): Promise<{ authorities: X509Certificate[]; pair?: PemPair; created: boolean }> {
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  const [cert, key] = await Promise.all([readIfPresent(certPath), readIfPresent(keyPath)]);
  if ('error' in cert) throw new Error(`cannot read ${certPath} (${cert.error})`);
  if ('error' in key) throw new Error(`cannot read ${keyPath} (${key.error})`);
  if ('missing' in cert) {
    if (!('missing' in key)) {
      throw new Error(`${keyPath} exists but ${certPath} does not; put the CA's certificate back, or remove ${keyPath} to create a new CA (every service certificate is then issued again)`);
    }
    const pair = await (await pki()).createCertificateAuthority({ now });
    await writeAtomically(keyPath, pair.keyPem, KEY_MODE);
    await writeAtomically(certPath, pair.certPem, CERT_MODE);
    return { authorities: parseCertificates(pair.certPem), pair, created: true };
  }
  const authorities = parseChain(cert.bytes, certPath);
  if ('missing' in key) return { authorities, created: false };
  const [authority] = authorities;
  if (!authority.ca) throw new Error(`${certPath} is not a CA certificate (basicConstraints CA is not set)`);
  if (!authority.checkPrivateKey(parseKey(key.bytes, keyPath))) throw new Error(`${keyPath} is not the private key of ${certPath}`);
  if (new Date(authority.validTo).getTime() <= now.getTime()) {
    throw new Error(`${certPath} expired on ${authority.validTo}; remove ${certPath} and ${keyPath} to create a new CA (every service certificate is then issued again)`);
  }
  return { authorities, pair: { certPem: cert.bytes.toString(), keyPem: key.bytes.toString() }, created: false };
}

/** Why this service's files should be (re)issued, or undefined to keep them. */
async function leafRenewal(
  dir: string, service: ServiceIdentity, authorities: X509Certificate[], requiredNames: readonly string[], now: Date,
): Promise<string | undefined> {
  const certPath = join(dir, certFileOf(service));
  const keyPath = join(dir, keyFileOf(service));
  const [cert, key] = await Promise.all([readIfPresent(certPath), readIfPresent(keyPath)]);
  if ('missing' in cert || 'missing' in key) return `${'missing' in cert ? certFileOf(service) : keyFileOf(service)} is missing`;
  if ('error' in cert) return `${certFileOf(service)} cannot be read (${cert.error})`;
  if ('error' in key) return `${keyFileOf(service)} cannot be read (${key.error})`;
  try {
    const chain = parseChain(cert.bytes, certPath);
    const reason = renewalReason({ chain, key: parseKey(key.bytes, keyPath), authorities, service, now, requiredNames });
    return reason && `${certFileOf(service)} ${reason}`;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Makes `dir` hold a CA and a certificate for each of `services`: creates what is missing,
 * keeps what is valid, and issues again a certificate that is unreadable, does not chain to
 * ca.crt, does not match its key, expires within 30 days, or lacks one of `extraNames` (host
 * names or IP literals peers dial the services by, beyond localhost, 127.0.0.1 and ::1). A
 * directory without ca.key (your own CA) is only checked: a certificate that would need issuing
 * is an error naming the file and the reason.
 */
export async function ensureServiceMaterial(
  dir: string, services: readonly ServiceIdentity[], extraNames: readonly string[] = [], options: { now?: Date } = {},
): Promise<MaterialReport> {
  const now = options.now ?? new Date();
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const authority = await readAuthority(dir, now);
  const report: MaterialReport = { dir, createdAuthority: authority.created, issued: [] };
  for (const service of services) {
    const reason = await leafRenewal(dir, service, authority.authorities, extraNames, now);
    if (!reason) continue;
    if (!authority.pair) {
      throw new Error(`${join(dir, certFileOf(service))}: ${reason}, and there is no ${join(dir, CA_KEY_FILE)} to issue a new one; replace the file with one signed by your CA`);
    }
    const issued = await (await pki()).issueServiceCertificate(authority.pair, service, { extraNames, now });
    await writeAtomically(join(dir, keyFileOf(service)), issued.keyPem, KEY_MODE);
    await writeAtomically(join(dir, certFileOf(service)), issued.certPem, CERT_MODE);
    report.issued.push({ service, reason });
  }
  return report;
}

async function readRequired(path: string, dir: string): Promise<Buffer> {
  const result = await readIfPresent(path);
  if ('bytes' in result) return result.bytes;
  const why = 'missing' in result ? 'no such file' : result.error;
  throw new Error(`TLS directory ${dir}: cannot read ${path} (${why}); \`nexus up\` creates the files there, or bring your own (see docs/security.md)`);
}

/**
 * Reads and checks one service's files from the TLS directory: ca.crt, <service>.crt and
 * <service>.key must be readable, the certificate must match the key, chain to ca.crt, be valid
 * now and name spiffe://nexusml/<service>. Throws an Error naming the file and the problem.
 */
export async function loadServiceMaterial(dir: string, service: ServiceIdentity, options: { now?: Date } = {}): Promise<ServiceMaterial> {
  const caPath = join(dir, CA_CERT_FILE);
  const certPath = join(dir, certFileOf(service));
  const keyPath = join(dir, keyFileOf(service));
  const [caPem, certPem, keyPem] = await Promise.all([readRequired(caPath, dir), readRequired(certPath, dir), readRequired(keyPath, dir)]);
  const reason = unusableReason({
    chain: parseChain(certPem, certPath), key: parseKey(keyPem, keyPath), authorities: parseChain(caPem, caPath), service, now: options.now ?? new Date(),
  });
  if (reason) throw new Error(`${certPath} ${reason}`);
  return { service, dir, caPem, certPem, keyPem };
}
