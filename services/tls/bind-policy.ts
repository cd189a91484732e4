/**
 * Whether a service may listen where it was told to, decided from facts alone: an address other
 * machines can reach needs both TLS (or the traffic, tokens included, is readable on the wire)
 * and authentication (or anyone who reaches it may call it), unless the operator says
 * --insecure. Loopback addresses are always allowed: only this machine reaches them.
 */
import { isIP } from 'node:net';

export interface BindFacts {
  /** The service's name, for the message ("registry", "router", "executor"). */
  service: string;
  /** The address it binds, as given: host:port, [v6]:port, or unix:/path. */
  address: string;
  /** Whether the port serves TLS. */
  tls: boolean;
  /** Whether calls are authenticated (tokens, or client certificates the server requires). */
  authentication: boolean;
  /** --insecure (NEXUS_INSECURE=1): the operator accepts an unprotected port. */
  insecure: boolean;
  /**
   * What to pass for what is missing, named in a refusal. Default: "pass --tls-dir DIR" for TLS,
   * "turn authentication on" for authentication; a remedy both share is said once.
   */
  remedies?: { tls?: string; authentication?: string };
}

export type BindDecision = { allowed: true; warning?: string } | { allowed: false; reason: string };

/** The host part of a gRPC bind address ('' for ":port"), without IPv6 brackets. */
function hostOf(address: string): string {
  const withoutScheme = address.replace(/^(dns|ipv4|ipv6):(\/\/\/?)?/, '');
  const bracketed = /^\[([^\]]*)\](?::\d*)?$/.exec(withoutScheme);
  if (bracketed) return bracketed[1];
  const colon = withoutScheme.lastIndexOf(':');
  return colon < 0 ? withoutScheme : withoutScheme.slice(0, colon);
}

/** True for addresses only this machine can reach: localhost, 127.0.0.0/8, ::1, a unix socket. */
export function isLoopbackAddress(address: string): boolean {
  if (address.startsWith('unix:') || address.startsWith('unix-abstract:')) return true;
  const host = hostOf(address).toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1' || /^(0{1,4}:){7}0{0,3}1$/.test(host) || host === '::ffff:127.0.0.1';
  return false;
}

/** Decides whether `facts.service` may listen on `facts.address`; a refusal says why and what to pass. */
export function decideBind(facts: BindFacts): BindDecision {
  if (isLoopbackAddress(facts.address) || (facts.tls && facts.authentication)) return { allowed: true };
  const missing = [!facts.tls && 'TLS', !facts.authentication && 'authentication'].filter(Boolean).join(' or ');
  const exposure = !facts.tls
    ? 'its calls, credentials included, would cross the network in plaintext'
    : 'anyone who can reach it could call it without credentials';
  if (facts.insecure) {
    return { allowed: true, warning: `${facts.service} listens on ${facts.address} without ${missing} (--insecure): ${exposure}` };
  }
  const remedies = [...new Set([
    !facts.tls && (facts.remedies?.tls ?? 'pass --tls-dir DIR'),
    !facts.authentication && (facts.remedies?.authentication ?? 'turn authentication on'),
  ].filter((remedy) => typeof remedy === 'string'))].join(' and ');
  return {
    allowed: false,
    reason: `${facts.service} will not listen on ${facts.address} without ${missing}: it is reachable from other machines and ${exposure}. `
      + `${remedies[0].toUpperCase()}${remedies.slice(1)}, listen on a loopback address such as 127.0.0.1, or pass --insecure (NEXUS_INSECURE=1) to accept the risk`,
  };
}
