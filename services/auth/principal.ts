/** The authenticated caller of one call, as every service sees it after authentication. */
import type { Role, ServiceIdentity } from './roles.ts';

/** What one principal may spend; 0 (or absent) means unlimited. Mirrors nexus.auth.v1.KeyLimits. */
export interface PrincipalLimits {
  requestsPerSecond: number;
  /** Calls allowed at once above the sustained rate; 0: the rate, rounded up. */
  burst: number;
  /** Rows (dimension 0 of the inputs) or generated tokens per second. */
  rowsPerSecond: number;
  /** Calls per UTC day. */
  dailyQuota: number;
  /** Calls in flight at once. */
  maxConcurrent: number;
}

export const UNLIMITED: PrincipalLimits = Object.freeze({ requestsPerSecond: 0, burst: 0, rowsPerSecond: 0, dailyQuota: 0, maxConcurrent: 0 });

export type Principal =
  | {
      kind: 'key' | 'jwt';
      /** Stable, loggable identifier: "key:<id>" or "jwt:<issuer>#<subject>". Never a secret. */
      id: string;
      role: Role;
      /** Model-name globs this principal may address; empty: every model. */
      models: readonly string[];
      limits: PrincipalLimits;
    }
  | {
      /** A NexusML service, identified by its certificate from the deployment's CA. */
      kind: 'service';
      id: `service:${ServiceIdentity}`;
      service: ServiceIdentity;
    }
  | {
      /** Authentication is off (a loopback development server started with --insecure). */
      kind: 'anonymous';
      id: 'anonymous';
    };

export const ANONYMOUS: Principal = Object.freeze({ kind: 'anonymous', id: 'anonymous' });
