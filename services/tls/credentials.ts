/**
 * grpc-js credentials from TLS material: a service's server side (with its policy on client
 * certificates), its client side when it dials another service, and the router's public port.
 *
 * Service certificates name localhost, 127.0.0.1 and ::1, so dialing a service on this machine
 * by any of those verifies without overrides; a service dialed by another host name or address
 * must have that name in its certificate (ensureServiceMaterial's `extraNames`).
 */
import {
  credentials, experimental, ServerCredentials, type ChannelCredentials,
} from '@grpc/grpc-js';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { checkServerIdentity } from 'node:tls';
import type { ServiceIdentity } from '../auth/roles.ts';
import type { ServiceMaterial } from './material.ts';
import { peerServiceIdentity, SERVICE_URI_PREFIX } from './peer.ts';

/**
 * What a server asks of its clients' certificates:
 * - 'required': a certificate from the CA, or the handshake fails (mutual TLS);
 * - 'optional': a certificate is asked for and, when verified, identifies the caller; a client
 *   without one (or with one the CA did not sign) still connects and must authenticate otherwise;
 * - 'none': no certificate is asked for.
 */
export type ClientCertificatePolicy = 'required' | 'optional' | 'none';

/**
 * A certificate provider whose certificates never change. grpc-js's certificate-provider server
 * credentials are the only ones that ask for a client certificate without rejecting a client
 * that has none (requestCert without rejectUnauthorized); createSsl offers required or none.
 *
 * Certificates reach a listener on the next microtask, not during `add…Listener`: grpc-js
 * subscribes to its providers before it registers the server's watcher, so an update delivered
 * at once would reach no server and the port would drop every connection. A microtask still
 * runs before the bound port can accept anything.
 */
class StaticCertificateProvider implements experimental.CertificateProvider {
  private readonly ca: experimental.CaCertificateUpdate;
  private readonly identity: experimental.IdentityCertificateUpdate;

  constructor(material: ServiceMaterial) {
    this.ca = { caCertificate: material.caPem };
    this.identity = { certificate: material.certPem, privateKey: material.keyPem };
  }

  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    queueMicrotask(() => listener(this.ca));
  }

  removeCaCertificateListener(): void {}

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    queueMicrotask(() => listener(this.identity));
  }

  removeIdentityCertificateListener(): void {}
}

/** Server credentials for a service's own port: its certificate, and `clientCertificate` as the policy. */
export function serverCredentials(material: ServiceMaterial, options: { clientCertificate: ClientCertificatePolicy }): ServerCredentials {
  const pair = { private_key: material.keyPem, cert_chain: material.certPem };
  switch (options.clientCertificate) {
    case 'required':
      // requestCert, and Node's tls server rejects an unverified client (rejectUnauthorized defaults to true).
      return ServerCredentials.createSsl(material.caPem, [pair], true);
    case 'none':
      return ServerCredentials.createSsl(material.caPem, [pair], false);
    case 'optional': {
      const provider = new StaticCertificateProvider(material);
      // One provider serves both roles, so the order of grpc-js's two provider arguments cannot matter.
      return experimental.createCertificateProviderServerCredentials(provider, provider, false);
    }
  }
}

/**
 * Credentials a service dials `peer` with: trusts the CA, presents its own certificate, and
 * accepts only a server whose certificate names the address dialed and `peer`'s URI SAN
 * (spiffe://nexusml/<peer>), so one service's certificate cannot stand in for another's.
 *
 * `verify: 'identity'` leaves out the address check and keeps the rest (the chain to the CA and
 * the URI SAN), as SPIFFE peers verify each other: for addresses no certificate can name in
 * advance, such as the pod IPs a headless Service's DNS name resolves to.
 */
export function channelCredentials(
  material: ServiceMaterial, peer: ServiceIdentity, options: { verify?: 'address-and-identity' | 'identity' } = {},
): ChannelCredentials {
  return credentials.createSsl(material.caPem, material.keyPem, material.certPem, {
    checkServerIdentity(host, certificate) {
      const wrongHost = options.verify === 'identity' ? undefined : checkServerIdentity(host, certificate);
      if (wrongHost) return wrongHost;
      const named = peerServiceIdentity({ sslPeerCertificate: certificate });
      if (named === peer) return undefined;
      return new Error(`expected the ${peer} service's certificate (${SERVICE_URI_PREFIX}${peer}) at ${host}, got ${named ? `the ${named} service's` : 'one naming no service'}`);
    },
  });
}

function readNamed(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new Error(`cannot read the ${what} ${path} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}

/**
 * Server credentials for the router's public port, from files the operator names (Triton's
 * --grpc-use-ssl with --grpc-server-cert / --grpc-server-key): TLS with `certFile` and `keyFile`,
 * and with `clientCaFile` mutual TLS, every client needing a certificate that CA signed
 * (--grpc-use-ssl-mutual). Throws naming the file that cannot be read or does not fit.
 */
export function publicServerCredentials(certFile: string, keyFile: string, clientCaFile?: string): ServerCredentials {
  const certPem = readNamed(certFile, 'TLS certificate (--tls-cert, NEXUS_TLS_CERT)');
  const keyPem = readNamed(keyFile, 'TLS private key (--tls-key, NEXUS_TLS_KEY)');
  let matches: boolean;
  try {
    matches = new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
  } catch (error) {
    throw new Error(`cannot use ${certFile} with ${keyFile} for TLS: ${(error as Error).message}`);
  }
  if (!matches) throw new Error(`${keyFile} is not the private key of ${certFile}`);
  const pair = [{ private_key: keyPem, cert_chain: certPem }];
  if (clientCaFile === undefined) return ServerCredentials.createSsl(null, pair, false);
  return ServerCredentials.createSsl(readNamed(clientCaFile, 'client CA (--tls-client-ca, NEXUS_TLS_CLIENT_CA)'), pair, true);
}
