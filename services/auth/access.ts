/**
 * What each RPC requires. Every service mounted with authentication declares, for every method
 * of its definition, whether it is open (health-like) or which role it needs and which services
 * may call it by certificate; a method missing from the table is refused, never open.
 */
import type { Role, ServiceIdentity } from './roles.ts';

export type MethodAccess =
  | { open: true }
  | {
      /** The least role a key or JWT must hold. */
      role: Role;
      /** Services that may call it by certificate alone; default none. */
      services?: readonly ServiceIdentity[];
      /**
       * The model a unary or server-streaming request addresses, checked against the principal's
       * model globs before the handler runs. Streams check each message in the handler.
       */
      modelOf?: (request: never) => string | undefined;
    }
  | {
      /** Only these services, by certificate; no key or JWT is enough. */
      servicesOnly: readonly ServiceIdentity[];
    };

/** A service's table, keyed by method name as its grpc-js definition names it (e.g. "modelInfer"). */
export type ServiceAccess = Readonly<Record<string, MethodAccess>>;
