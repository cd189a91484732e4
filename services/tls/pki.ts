/**
 * A deployment's own certificate authority and the certificates it issues to each service, made
 * with @peculiar/x509 over Node's WebCrypto. Everything is ECDSA P-256 with SHA-256: small keys,
 * fast handshakes, and what every TLS stack (Node, grpcio's BoringSSL, Go) accepts.
 *
 * Only bytes in, PEM out: where the files live and when to re-issue is material.ts's business.
 */
// tsyringe (a dependency of @peculiar/x509) needs the Reflect metadata API before it loads.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import type { ServiceIdentity } from '../auth/roles.ts';
import { SERVICE_URI_PREFIX } from './peer.ts';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const DAY_MS = 24 * 60 * 60 * 1000;
/** How long the CA is valid: 10 years, so it outlives any leaf it signs. */
export const CA_VALIDITY_DAYS = 3650;
/** How long a service certificate is valid: 1 year; `ensureServiceMaterial` renews it 30 days before. */
export const LEAF_VALIDITY_DAYS = 365;
/**
 * How far before "now" a certificate starts, in milliseconds (1 hour): a peer whose clock runs a
 * little behind must not see a certificate that is not valid yet.
 */
const CLOCK_SKEW_MS = 60 * 60 * 1000;

const EC_KEY: webcrypto.EcKeyGenParams & webcrypto.EcKeyImportParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** A certificate and its private key, both PEM (the key PKCS#8, "BEGIN PRIVATE KEY"). */
export interface PemPair {
  certPem: string;
  keyPem: string;
}

/** The names every service certificate carries, so dialing the usual loopback forms just works. */
export const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'] as const;

/** The URI SAN that identifies a service to its peers (read back by peer.ts). */
export const serviceUri = (service: ServiceIdentity) => `${SERVICE_URI_PREFIX}${service}`;

async function newKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return webcrypto.subtle.generateKey(EC_KEY, true, ['sign', 'verify']) as Promise<webcrypto.CryptoKeyPair>;
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

/** A random positive 128-bit serial number (RFC 5280 allows up to 20 octets; the top bit stays 0). */
function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  return Buffer.from(bytes).toString('hex');
}

/**
 * Creates a self-signed CA: basicConstraints CA (path length 0: it signs leaves only), key usage
 * keyCertSign and cRLSign, valid CA_VALIDITY_DAYS from `now`.
 */
export async function createCertificateAuthority(options: { name?: string; now?: Date } = {}): Promise<PemPair> {
  const now = options.now ?? new Date();
  const keys = await newKeyPair();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${options.name ?? 'NexusML local CA'}, O=NexusML`,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: certificate.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/** Splits extra names into SAN entries: an IPv4 or IPv6 literal is an IP name, anything else a DNS name. */
function subjectAltNames(service: ServiceIdentity, extraNames: readonly string[]): x509.JsonGeneralName[] {
  const names = [...new Set([...LOOPBACK_NAMES, ...extraNames])];
  return [
    ...names.map((name): x509.JsonGeneralName => ({ type: isIP(name) ? 'ip' : 'dns', value: name })),
    { type: 'url', value: serviceUri(service) },
  ];
}

/**
 * Issues a service certificate signed by `ca`: ECDSA P-256, valid LEAF_VALIDITY_DAYS from `now`,
 * usable as a server and as a client (serverAuth + clientAuth: services dial each other with the
 * same certificate they serve with), with SANs DNS localhost, IP 127.0.0.1, IP ::1, the
 * `extraNames` (host names or IP literals peers dial it by) and URI spiffe://nexusml/<service>.
 */
export async function issueServiceCertificate(
  ca: PemPair, service: ServiceIdentity, options: { extraNames?: readonly string[]; now?: Date } = {},
): Promise<PemPair> {
  const now = options.now ?? new Date();
  const caCertificate = new x509.X509Certificate(ca.certPem);
  const caKey = await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(ca.keyPem), EC_KEY, false, ['sign']);
  const keys = await newKeyPair();
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=nexusml ${service}, O=NexusML`,
    issuer: caCertificate.subject,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + LEAF_VALIDITY_DAYS * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(subjectAltNames(service, options.extraNames ?? [])),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(caCertificate),
    ],
  });
  return { certPem: certificate.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}
