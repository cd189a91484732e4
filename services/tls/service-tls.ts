/**
 * What a service process makes of its TLS flags: its credentials from the TLS directory (or
 * plaintext when there is none), and the bind policy applied before it listens.
 */
import type { ChannelCredentials, ServerCredentials } from '@grpc/grpc-js';
import type { ServiceIdentity } from '../auth/roles.ts';
import { decideBind, type BindFacts } from './bind-policy.ts';
import { channelCredentials, serverCredentials, type ClientCertificatePolicy } from './credentials.ts';
import { loadServiceMaterial, type ServiceMaterial } from './material.ts';

/** A service's TLS: the files it was loaded from and the credentials made of them. */
export interface ServiceTls {
  material: ServiceMaterial;
  /** For the service's own port, with its policy on client certificates. */
  server: ServerCredentials;
  /** For dialing `peer`: trusts the CA, presents this service's certificate, expects `peer`'s. */
  dial(peer: ServiceIdentity): ChannelCredentials;
  /** As `dial`, checking the certificate's identity (URI SAN) but not that it names the address dialed: for pod IPs. */
  dialByIdentity(peer: ServiceIdentity): ChannelCredentials;
}

/** The TLS directory a service process uses: --tls-dir, else NEXUS_TLS_DIR; undefined: plaintext. */
export function tlsDirFrom(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return flag ?? (env.NEXUS_TLS_DIR || undefined);
}

/**
 * Loads `service`'s certificate from `dir` (see material.ts) and makes its credentials; undefined
 * without a directory. Throws naming the file when one is missing, unreadable or does not fit.
 */
export async function loadServiceTls(
  service: ServiceIdentity, dir: string | undefined, clientCertificate: ClientCertificatePolicy,
): Promise<ServiceTls | undefined> {
  if (dir === undefined) return undefined;
  const material = await loadServiceMaterial(dir, service);
  return {
    material, server: serverCredentials(material, { clientCertificate }), dial: (peer) => channelCredentials(material, peer),
    dialByIdentity: (peer) => channelCredentials(material, peer, { verify: 'identity' }),
  };
}

/**
 * Applies the bind policy (bind-policy.ts) before a service listens: throws the refusal, which
 * says why and what to pass; writes the warning an --insecure exposure gets to stderr.
 */
export function enforceBindPolicy(facts: BindFacts): void {
  const decision = decideBind(facts);
  if (!decision.allowed) throw new Error(decision.reason);
  if (decision.warning) console.error(`${facts.service}: warning: ${decision.warning}`);
}
