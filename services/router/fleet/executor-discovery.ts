/**
 * Executors found by a DNS name (--executors-dns): every A and AAAA record of the name is an
 * executor, as a Kubernetes headless Service publishes one record per ready pod. The name is
 * resolved again on an interval and soon after an executor's stream is lost; a new address is
 * dialed, an address that disappears is drained (no new batches, the ones in flight finish) and
 * then dropped, and the router serves through the churn.
 *
 * What to do with one answer is pure (`membershipChange`); the resolver is injected, so the
 * policy is tested without DNS, and the system's resolver is getaddrinfo (dns.lookup), which
 * honours /etc/hosts and resolv.conf's search domains as every other program on the host does.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '../../telemetry/logger.ts';
import type { ExecutorDialer } from './executor-stream.ts';

/** The executor port a DNS name without one gets: the executor's default (--address 127.0.0.1:8021). */
export const DEFAULT_EXECUTOR_PORT = 8021;
/** How often the name is resolved again by default, in milliseconds. */
export const DEFAULT_DNS_INTERVAL_MS = 5_000;
/** Resolutions asked for by lost streams come at most this often, in milliseconds. */
const MIN_REFRESH_GAP_MS = 1_000;

/** The DNS name executors are found by, and the port they listen on. */
export interface DnsTarget {
  name: string;
  port: number;
}

/** A host name as DNS allows it: labels of letters, digits and hyphens, at most 253 characters. */
const HOST_NAME = /^(?=.{1,253}\.?$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*\.?$/i;

/**
 * Reads `NAME[:PORT]` (the --executors-dns flag, or NEXUS_EXECUTORS_DNS). Throws naming the flag
 * and what is wrong: an empty value, an IP address (a name is resolved, an address is an
 * --executor), a name DNS cannot hold, a port outside 1..65535.
 */
export function parseDnsTarget(value: string, defaultPort = DEFAULT_EXECUTOR_PORT): DnsTarget {
  const flag = '--executors-dns (NEXUS_EXECUTORS_DNS)';
  const trimmed = value.trim();
  if (trimmed === '') throw new Error(`${flag} is empty; give NAME[:PORT], e.g. nexus-executor.nexus.svc.cluster.local:8021`);
  const colon = trimmed.lastIndexOf(':');
  const name = colon < 0 ? trimmed : trimmed.slice(0, colon);
  const portText = colon < 0 ? undefined : trimmed.slice(colon + 1);
  if (isIP(name) !== 0 || isIP(trimmed) !== 0 || name.startsWith('[')) {
    throw new Error(`${flag} '${value}' is an address, not a DNS name; dial one executor by address with --executor HOST:PORT`);
  }
  if (!HOST_NAME.test(name)) throw new Error(`${flag} '${value}': '${name}' is not a DNS name`);
  if (portText === undefined) return { name, port: defaultPort };
  const port = Number(portText);
  if (!/^\d+$/.test(portText) || port < 1 || port > 65_535) throw new Error(`${flag} '${value}': the port must be a number from 1 to 65535, got '${portText}'`);
  return { name, port };
}

/** host:port for an address DNS gave, IPv6 in brackets as gRPC targets write it. */
export function executorAddress(ip: string, port: number): string {
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** What one resolution says: the addresses it found, or that it could not tell. */
export type Resolution =
  | { kind: 'addresses'; ips: readonly string[] }
  /** The name exists nowhere or has no address records: an authoritative "no executors". */
  | { kind: 'none'; reason: string }
  /** A timeout, a server failure, no DNS server reachable: nothing is known. */
  | { kind: 'unknown'; reason: string };

export interface MembershipChange {
  /** Addresses to dial (or to take back from draining). */
  add: string[];
  /** Addresses to drain and then drop. */
  drain: string[];
}

/**
 * What to do with one resolution, given the addresses discovery holds now. Pure. A resolution
 * that could not tell changes nothing (a DNS hiccup must not empty the fleet); an authoritative
 * answer, addresses or none, is the fleet from now on.
 */
export function membershipChange(current: ReadonlySet<string>, resolution: Resolution, port: number): MembershipChange {
  if (resolution.kind === 'unknown') return { add: [], drain: [] };
  const wanted = new Set(resolution.kind === 'addresses' ? resolution.ips.map((ip) => executorAddress(ip, port)) : []);
  return {
    add: [...wanted].filter((address) => !current.has(address)).sort(),
    drain: [...current].filter((address) => !wanted.has(address)).sort(),
  };
}

/** Resolves a name to its resolution; tests give their own. */
export type DnsResolver = (name: string) => Promise<Resolution>;

/** DNS errors that are an answer: the name does not exist, or has no address records. */
const AUTHORITATIVE_EMPTY = new Set(['ENOTFOUND', 'ENODATA', 'EAI_NONAME', 'EAI_NODATA']);

/**
 * The system's resolver: getaddrinfo through dns.lookup, every A and AAAA record. A headless
 * Service with no ready pod answers NXDOMAIN, which is "none"; anything else that fails is "unknown".
 */
export const systemResolver: DnsResolver = async (name) => {
  try {
    const records = await lookup(name, { all: true, order: 'ipv4first' });
    const ips = [...new Set(records.map((record) => record.address))];
    return ips.length > 0 ? { kind: 'addresses', ips } : { kind: 'none', reason: 'no address records' };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    return AUTHORITATIVE_EMPTY.has(code) ? { kind: 'none', reason: code } : { kind: 'unknown', reason: code };
  }
};

/** What discovery needs of the pool. */
export interface DiscoveredFleet {
  /** Dials `address` (or takes it back from draining); false when the pool holds it otherwise (an --executor). */
  addExecutor(address: string): boolean;
  /** Stops sending `address` new work and drops it once idle. */
  drainExecutor(address: string): void;
}

export interface ExecutorDiscoveryOptions {
  target: DnsTarget;
  fleet: DiscoveredFleet;
  logger: Logger;
  /** Default systemResolver. */
  resolver?: DnsResolver;
  /** How often the name is resolved again, in milliseconds. Default DEFAULT_DNS_INTERVAL_MS (5 s). */
  intervalMs?: number;
}

/** Follows a DNS name and keeps the pool's discovered executors equal to its records. */
export class ExecutorDiscovery {
  /** The addresses discovery added to the pool and has not drained. */
  private readonly members = new Set<string>();
  private readonly options: ExecutorDiscoveryOptions;
  private readonly resolver: DnsResolver;
  private timer: NodeJS.Timeout | undefined;
  private soonTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastResolvedMs = 0;
  private closed = false;
  private lastProblem: string | undefined;

  constructor(options: ExecutorDiscoveryOptions) {
    this.options = options;
    this.resolver = options.resolver ?? systemResolver;
  }

  /** The executors discovery holds now, host:port each. */
  get addresses(): string[] {
    return [...this.members].sort();
  }

  /** Resolves at once, then every interval. */
  start(): void {
    void this.resolveNow();
    const every = this.options.intervalMs ?? DEFAULT_DNS_INTERVAL_MS;
    this.timer = setInterval(() => void this.resolveNow(), every);
    this.timer.unref();
  }

  /** Asks for a resolution soon (a stream was lost): at once, or once the last one is a second old. */
  refreshSoon(): void {
    if (this.closed || this.soonTimer) return;
    const waitMs = Math.max(0, this.lastResolvedMs + MIN_REFRESH_GAP_MS - Date.now());
    this.soonTimer = setTimeout(() => {
      this.soonTimer = undefined;
      void this.resolveNow();
    }, waitMs);
    this.soonTimer.unref();
  }

  /** Resolves the name once and applies the answer; concurrent calls share one resolution. */
  resolveNow(): Promise<void> {
    this.running ??= this.resolveAndApply().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async resolveAndApply(): Promise<void> {
    const { target, fleet, logger } = this.options;
    this.lastResolvedMs = Date.now();
    const resolution = await this.resolver(target.name);
    if (this.closed) return;
    if (resolution.kind !== 'addresses') {
      // Said once per new problem, not every five seconds.
      const problem = `${resolution.kind}:${resolution.reason}`;
      if (problem !== this.lastProblem) {
        logger.warn({ dns: target.name, reason: resolution.reason, executors: this.addresses },
          resolution.kind === 'none' ? 'executor DNS name has no addresses; draining every discovered executor' : 'executor DNS name could not be resolved; keeping the executors known');
      }
      this.lastProblem = problem;
    } else this.lastProblem = undefined;
    const change = membershipChange(this.members, resolution, target.port);
    for (const address of change.drain) {
      this.members.delete(address);
      fleet.drainExecutor(address);
    }
    for (const address of change.add) {
      if (fleet.addExecutor(address)) this.members.add(address);
    }
    if (change.add.length + change.drain.length > 0) {
      logger.info({ dns: target.name, added: change.add, draining: change.drain, executors: this.addresses }, 'executors changed');
    }
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.soonTimer);
  }
}

/**
 * A dialer that calls `onLost` each time its link dials again, which a link does only after its
 * stream was lost: the moment to ask DNS whether the executor is still there.
 */
export function reportingReconnects(dialer: ExecutorDialer, onLost: () => void): ExecutorDialer {
  let dials = 0;
  return {
    connect: () => {
      if (dials++ > 0) onLost();
      return dialer.connect();
    },
    close: () => dialer.close(),
  };
}
