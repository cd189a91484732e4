/**
 * The local CA and service certificates: what `nexus up` writes under $NEXUS_HOME/tls chains to
 * its CA (checked by node:crypto, not by the code that made it), names what peers dial, keeps its
 * keys private, is reused while good and issued again when it would soon stop working.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SERVICE_IDENTITIES } from '../../services/auth/roles.ts';
import { ensureServiceMaterial, loadServiceMaterial } from '../../services/tls/material.ts';
import { createCertificateAuthority, issueServiceCertificate } from '../../services/tls/pki.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nexus-tls-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const certificate = async (name: string) => new X509Certificate(await readFile(join(dir, name)));
const modeOf = async (name: string) => (await stat(join(dir, name))).mode & 0o777;

describe('createCertificateAuthority and issueServiceCertificate', () => {
  it('make a P-256 CA valid for 10 years and leaves valid for 1 year that it signed', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const ca = await createCertificateAuthority({ now });
    const leaf = await issueServiceCertificate(ca, 'executor', { now, extraNames: ['executor-0.nexus.svc', '10.1.2.3'] });
    const caCertificate = new X509Certificate(ca.certPem);
    const leafCertificate = new X509Certificate(leaf.certPem);

    expect(caCertificate.ca).toBe(true);
    expect(leafCertificate.ca).toBe(false);
    expect(leafCertificate.checkIssued(caCertificate)).toBe(true);
    expect(leafCertificate.verify(caCertificate.publicKey)).toBe(true);
    expect(caCertificate.verify(caCertificate.publicKey)).toBe(true);
    expect(caCertificate.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
    expect(leafCertificate.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
    expect(leafCertificate.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
    expect(Math.round((new Date(caCertificate.validTo).getTime() - now.getTime()) / DAY_MS)).toBe(3650);
    expect(Math.round((new Date(leafCertificate.validTo).getTime() - now.getTime()) / DAY_MS)).toBe(365);
    expect(leafCertificate.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(leafCertificate.subjectAltName!.split(', ')).toEqual([
      'DNS:localhost', 'IP Address:127.0.0.1', 'IP Address:0:0:0:0:0:0:0:1', 'DNS:executor-0.nexus.svc', 'IP Address:10.1.2.3',
      'URI:spiffe://nexusml/executor',
    ]);
    expect(leafCertificate.checkHost('localhost')).toBe('localhost');
    expect(leafCertificate.checkIP('127.0.0.1')).toBe('127.0.0.1');
    expect(leafCertificate.checkIP('::1')).toBe('::1');
  });

  it('make a leaf that a different CA does not verify', async () => {
    const ca = await createCertificateAuthority();
    const other = new X509Certificate((await createCertificateAuthority()).certPem);
    const leaf = new X509Certificate((await issueServiceCertificate(ca, 'router')).certPem);
    expect(leaf.verify(other.publicKey)).toBe(false);
  });
});

describe('ensureServiceMaterial', () => {
  it('creates a CA and one certificate per service, keys 0600, each chaining to ca.crt', async () => {
    const report = await ensureServiceMaterial(dir, SERVICE_IDENTITIES);
    expect(report.createdAuthority).toBe(true);
    expect(report.issued.map((entry) => entry.service)).toEqual(['router', 'executor', 'registry']);
    const ca = await certificate('ca.crt');
    expect(await modeOf('ca.key')).toBe(0o600);
    for (const service of SERVICE_IDENTITIES) {
      const leaf = await certificate(`${service}.crt`);
      expect(leaf.verify(ca.publicKey), service).toBe(true);
      expect(leaf.subjectAltName).toContain(`URI:spiffe://nexusml/${service}`);
      expect(await modeOf(`${service}.key`)).toBe(0o600);
      const material = await loadServiceMaterial(dir, service);
      expect(new X509Certificate(material.certPem).checkPrivateKey(createPrivateKey(material.keyPem))).toBe(true);
    }
    expect(await modeOf('.')).toBe(0o700);
  });

  it('reuses what is there on a second call', async () => {
    await ensureServiceMaterial(dir, SERVICE_IDENTITIES);
    const before = await Promise.all(['ca.crt', 'ca.key', 'router.crt', 'router.key'].map((name) => readFile(join(dir, name), 'utf8')));
    const report = await ensureServiceMaterial(dir, SERVICE_IDENTITIES);
    expect(report).toEqual({ dir, createdAuthority: false, issued: [] });
    const after = await Promise.all(['ca.crt', 'ca.key', 'router.crt', 'router.key'].map((name) => readFile(join(dir, name), 'utf8')));
    expect(after).toEqual(before);
  });

  it('issues again a certificate within 30 days of expiry, and keeps one 31 days from it', async () => {
    const issuedAt = new Date();
    await ensureServiceMaterial(dir, ['router'], [], { now: new Date(issuedAt.getTime() - 300 * DAY_MS) });
    const old = await readFile(join(dir, 'router.crt'), 'utf8');
    const validTo = new Date((await certificate('router.crt')).validTo).getTime();

    const kept = await ensureServiceMaterial(dir, ['router'], [], { now: new Date(validTo - 31 * DAY_MS) });
    expect(kept.issued).toEqual([]);
    expect(await readFile(join(dir, 'router.crt'), 'utf8')).toBe(old);

    const renewed = await ensureServiceMaterial(dir, ['router'], [], { now: new Date(validTo - 29 * DAY_MS) });
    expect(renewed.issued).toEqual([{ service: 'router', reason: expect.stringMatching(/^router\.crt expires on .*, within 30 days$/) }]);
    const fresh = await certificate('router.crt');
    expect(new Date(fresh.validTo).getTime()).toBeGreaterThan(validTo);
    expect(fresh.verify((await certificate('ca.crt')).publicKey)).toBe(true);
  });

  it('issues again a certificate that does not chain to ca.crt, or lacks an extra name asked for', async () => {
    await ensureServiceMaterial(dir, ['registry']);
    const foreignCa = await createCertificateAuthority();
    const foreign = await issueServiceCertificate(foreignCa, 'registry');
    await writeFile(join(dir, 'registry.crt'), foreign.certPem);
    await writeFile(join(dir, 'registry.key'), foreign.keyPem);
    const rechained = await ensureServiceMaterial(dir, ['registry']);
    expect(rechained.issued).toEqual([{ service: 'registry', reason: 'registry.crt is not signed by the CA in ca.crt' }]);
    expect((await certificate('registry.crt')).verify((await certificate('ca.crt')).publicKey)).toBe(true);

    const named = await ensureServiceMaterial(dir, ['registry'], ['registry.internal']);
    expect(named.issued).toEqual([{ service: 'registry', reason: 'registry.crt does not name registry.internal' }]);
    expect((await certificate('registry.crt')).checkHost('registry.internal')).toBe('registry.internal');
    expect((await ensureServiceMaterial(dir, ['registry'], ['registry.internal'])).issued).toEqual([]);
  });

  it('only checks a directory without ca.key (your own CA), naming the file that would need issuing', async () => {
    const ownCa = await createCertificateAuthority({ name: 'Example Corp CA' });
    const own = await issueServiceCertificate(ownCa, 'router');
    await writeFile(join(dir, 'ca.crt'), ownCa.certPem);
    await writeFile(join(dir, 'router.crt'), own.certPem);
    await writeFile(join(dir, 'router.key'), own.keyPem, { mode: 0o600 });
    expect(await ensureServiceMaterial(dir, ['router'])).toEqual({ dir, createdAuthority: false, issued: [] });
    await expect(ensureServiceMaterial(dir, ['router', 'executor'])).rejects.toThrow(
      `${join(dir, 'executor.crt')}: executor.crt is missing, and there is no ${join(dir, 'ca.key')} to issue a new one`);
  });

  it('refuses a ca.key without its ca.crt instead of replacing the CA', async () => {
    await ensureServiceMaterial(dir, ['router']);
    await rm(join(dir, 'ca.crt'));
    await expect(ensureServiceMaterial(dir, ['router'])).rejects.toThrow(`${join(dir, 'ca.key')} exists but ${join(dir, 'ca.crt')} does not`);
  });
});

describe('loadServiceMaterial', () => {
  it('names the file that is missing', async () => {
    await ensureServiceMaterial(dir, ['router']);
    await rm(join(dir, 'router.key'));
    await expect(loadServiceMaterial(dir, 'router')).rejects.toThrow(`TLS directory ${dir}: cannot read ${join(dir, 'router.key')} (no such file)`);
  });

  it('names the file that cannot be read', async () => {
    await ensureServiceMaterial(dir, ['router']);
    // A directory where the key should be: unreadable whoever runs the test (root reads any 0000 file).
    await rm(join(dir, 'router.key'));
    await mkdir(join(dir, 'router.key'));
    await expect(loadServiceMaterial(dir, 'router')).rejects.toThrow(/cannot read .*router\.key \(EISDIR/);
  });

  it('refuses a certificate for another service, one not from the CA, and a key that is not its own', async () => {
    await ensureServiceMaterial(dir, ['router', 'executor']);
    await writeFile(join(dir, 'router.crt'), await readFile(join(dir, 'executor.crt')));
    await expect(loadServiceMaterial(dir, 'router')).rejects.toThrow('router.crt does not match its private key');
    await writeFile(join(dir, 'router.key'), await readFile(join(dir, 'executor.key')));
    await expect(loadServiceMaterial(dir, 'router')).rejects.toThrow('router.crt names no URI SAN spiffe://nexusml/router');

    const foreign = await issueServiceCertificate(await createCertificateAuthority(), 'router');
    await writeFile(join(dir, 'router.crt'), foreign.certPem);
    await writeFile(join(dir, 'router.key'), foreign.keyPem);
    await expect(loadServiceMaterial(dir, 'router')).rejects.toThrow('router.crt is not signed by the CA in ca.crt');
  });

  it('accepts a leaf signed through an intermediate that follows it in its file', async () => {
    // Made by hand: our own CA has path length 0 (it signs leaves only), a corporate root does not.
    const root = await handMadeAuthority('Example Root');
    const intermediate = await handMadeAuthority('Example Intermediate', root);
    const leaf = await issueServiceCertificate(intermediate, 'registry');
    await writeFile(join(dir, 'ca.crt'), root.certPem);
    await writeFile(join(dir, 'registry.crt'), `${leaf.certPem}\n${intermediate.certPem}`);
    await writeFile(join(dir, 'registry.key'), leaf.keyPem);
    await expect(loadServiceMaterial(dir, 'registry')).resolves.toMatchObject({ service: 'registry' });
  });
});

/** A CA without a path length limit, self-signed or signed by `issuer`, for the bring-your-own chain test. */
async function handMadeAuthority(name: string, issuer?: { certPem: string; keyPem: string }) {
  const x509 = await import('@peculiar/x509');
  const { webcrypto } = await import('node:crypto');
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  const keys = await webcrypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const signingKey = issuer
    ? await webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(issuer.keyPem), algorithm, false, ['sign'])
    : keys.privateKey;
  const certificate = await x509.X509CertificateGenerator.create({
    subject: `CN=${name}`,
    issuer: issuer ? new x509.X509Certificate(issuer.certPem).subject : `CN=${name}`,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + 100 * DAY_MS),
    publicKey: keys.publicKey,
    signingKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true)],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: certificate.toString('pem'), keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}
