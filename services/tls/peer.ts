/**
 * A NexusML service's identity, read from the certificate its peer presented. Each service's
 * certificate from the deployment's CA carries a URI SAN `spiffe://nexusml/<service>`; only a
 * certificate the TLS layer verified against that CA is read (grpc-js's auth context holds one
 * only when it was verified).
 */
import type { PeerCertificate } from 'node:tls';
import { isServiceIdentity, type ServiceIdentity } from '../auth/roles.ts';

export const SERVICE_URI_PREFIX = 'spiffe://nexusml/';

/** The service a verified peer certificate names, or undefined when there is none or it names none. */
export function peerServiceIdentity(authContext: { sslPeerCertificate?: PeerCertificate } | undefined): ServiceIdentity | undefined {
  const altNames = authContext?.sslPeerCertificate?.subjectaltname;
  if (!altNames) return undefined;
  for (const entry of altNames.split(',')) {
    const name = entry.trim();
    if (!name.startsWith(`URI:${SERVICE_URI_PREFIX}`)) continue;
    const service = name.slice(`URI:${SERVICE_URI_PREFIX}`.length);
    if (isServiceIdentity(service)) return service;
  }
  return undefined;
}
