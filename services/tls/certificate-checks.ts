/**
 * What is wrong with a certificate, decided from parsed certificates and keys alone (no files):
 * whether it chains to the CA, names its service, holds its names, matches its key and lives long
 * enough. material.ts reads the files and acts on the answers.
 */
import { X509Certificate, type KeyObject } from 'node:crypto';
import type { ServiceIdentity } from '../auth/roles.ts';
import { serviceUri } from './pki.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
/** A service certificate is renewed this many days before it expires: 30. */
export const RENEW_BEFORE_DAYS = 30;

/** Every certificate in a PEM text, in order (a bundle or a leaf followed by its intermediates). */
export function parseCertificates(pem: string | Buffer): X509Certificate[] {
  const blocks = pem.toString().match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((block) => new X509Certificate(block));
}

/** True when `issuer` names `subject`'s issuer and its key verifies `subject`'s signature. */
const signedBy = (subject: X509Certificate, issuer: X509Certificate) => subject.checkIssued(issuer) && subject.verify(issuer.publicKey);

/**
 * True when `leaf` is signed by one of `authorities`, directly or through intermediates from
 * `intermediates` (the certificates that follow the leaf in its own file).
 */
export function chainsTo(leaf: X509Certificate, authorities: readonly X509Certificate[], intermediates: readonly X509Certificate[] = []): boolean {
  const seen = new Set<X509Certificate>();
  for (let current: X509Certificate | undefined = leaf; current && !seen.has(current);) {
    seen.add(current);
    if (authorities.some((authority) => signedBy(current!, authority))) return true;
    current = intermediates.find((candidate) => candidate.ca && !seen.has(candidate) && signedBy(current!, candidate));
  }
  return false;
}

/** The SAN entries of a certificate, as Node prints them ("DNS:localhost", "IP Address:127.0.0.1", "URI:…"). */
function altNames(certificate: X509Certificate): string[] {
  return (certificate.subjectAltName ?? '').split(',').map((entry) => entry.trim()).filter(Boolean);
}

/** True when the certificate names `name` as a DNS or IP SAN (IPv6 compared in Node's expanded form). */
function namesHost(certificate: X509Certificate, name: string): boolean {
  const names = altNames(certificate);
  if (names.includes(`DNS:${name}`) || names.includes(`IP Address:${name}`)) return true;
  // Node prints IPv6 SANs expanded and upper-case ("0:0:0:0:0:0:0:1"); compare through a URL parse.
  if (!name.includes(':')) return false;
  const canonical = (address: string) => {
    try {
      return new URL(`http://[${address}]/`).hostname;
    } catch {
      return undefined;
    }
  };
  const wanted = canonical(name);
  return wanted !== undefined && names.some((entry) => entry.startsWith('IP Address:') && canonical(entry.slice('IP Address:'.length)) === wanted);
}

export interface LeafFacts {
  /** The certificate file's certificates: the leaf first, then any intermediates. */
  chain: readonly X509Certificate[];
  key: KeyObject;
  authorities: readonly X509Certificate[];
  service: ServiceIdentity;
  now: Date;
}

/**
 * Why a service certificate cannot be used as it is (the first reason found), or undefined
 * when it can: it must match its key, chain to the CA, be valid now and name its service's URI.
 */
export function unusableReason(facts: LeafFacts): string | undefined {
  const [leaf] = facts.chain;
  if (!leaf) return 'holds no PEM certificate';
  if (!leaf.checkPrivateKey(facts.key)) return 'does not match its private key';
  if (!chainsTo(leaf, facts.authorities, facts.chain.slice(1))) return 'is not signed by the CA in ca.crt';
  if (new Date(leaf.validFrom).getTime() > facts.now.getTime()) return `is not valid until ${leaf.validFrom}`;
  if (new Date(leaf.validTo).getTime() <= facts.now.getTime()) return `expired on ${leaf.validTo}`;
  if (!altNames(leaf).includes(`URI:${serviceUri(facts.service)}`)) return `names no URI SAN ${serviceUri(facts.service)}, so peers cannot tell which service it is`;
  return undefined;
}

/**
 * Why a service certificate we manage should be issued again (the first reason found), or
 * undefined to keep it: anything `unusableReason` finds, an expiry within RENEW_BEFORE_DAYS, or
 * a host name or IP it was asked to carry and does not.
 */
export function renewalReason(facts: LeafFacts & { requiredNames: readonly string[] }): string | undefined {
  const unusable = unusableReason(facts);
  if (unusable) return unusable;
  const [leaf] = facts.chain;
  const expires = new Date(leaf.validTo).getTime();
  if (expires - facts.now.getTime() < RENEW_BEFORE_DAYS * DAY_MS) return `expires on ${leaf.validTo}, within ${RENEW_BEFORE_DAYS} days`;
  const missing = facts.requiredNames.filter((name) => !namesHost(leaf, name));
  if (missing.length > 0) return `does not name ${missing.join(', ')}`;
  return undefined;
}
