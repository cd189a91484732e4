/**
 * What each RPC requires, and the decision whether a principal may make a call. Every service
 * mounted with authentication declares, for every method of its definition, whether it is open
 * (health-like) or which role it needs and which services may call it by certificate; a method
 * missing from the table is refused, never open. The decisions are pure: they throw coded errors
 * and know no transport.
 */
import picomatch from 'picomatch';
import { ErrorCode, NexusError } from '../domain/index.ts';
import type { Principal } from './principal.ts';
import { roleAllows, type Role, type ServiceIdentity } from './roles.ts';

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

const denied = (message: string) => new NexusError(ErrorCode.PERMISSION_DENIED, message);

const listOf = (services: readonly ServiceIdentity[]) => services.map((service) => `'${service}'`).join(' or ');

/**
 * Throws PERMISSION_DENIED unless `principal` may call the method `methodLabel` (as clients name
 * it, e.g. "ModelInfer") that `access` describes, addressing `modelName` when the request names
 * one. An anonymous principal (authentication off) may do anything.
 */
export function authorize(principal: Principal, access: MethodAccess, methodLabel: string, modelName?: string): void {
  if ('open' in access || principal.kind === 'anonymous') return;
  if ('servicesOnly' in access) {
    if (principal.kind === 'service' && access.servicesOnly.includes(principal.service)) return;
    throw denied(`${methodLabel} may be called only by the ${listOf(access.servicesOnly)} service, by its certificate`);
  }
  if (principal.kind === 'service') {
    if (access.services?.includes(principal.service)) return;
    throw denied(`${methodLabel} needs the '${access.role}' role; the '${principal.service}' service's certificate does not grant it`);
  }
  if (!roleAllows(principal.role, access.role)) throw denied(`${methodLabel} needs the '${access.role}' role`);
  if (modelName !== undefined) authorizeModel(principal, modelName);
}

/** One compiled matcher per glob list: a principal's list is one array for as long as it lives. */
const matchers = new WeakMap<readonly string[], (name: string) => boolean>();

function matcherOf(globs: readonly string[]): (name: string) => boolean {
  let matcher = matchers.get(globs);
  if (!matcher) {
    // Model names have no '/', so '*' is every name; dot: a name may start with '.'.
    matcher = picomatch(globs as string[], { dot: true });
    matchers.set(globs, matcher);
  }
  return matcher;
}

/**
 * Throws PERMISSION_DENIED when `principal`'s model globs do not cover `modelName`. For stream
 * handlers that check each message; unary calls are checked through their table's `modelOf`. An
 * empty name addresses no model (validation refuses it later); services and anonymous callers,
 * and keys or JWTs without globs, may use every model.
 */
export function authorizeModel(principal: Principal, modelName: string): void {
  if (modelName === '' || (principal.kind !== 'key' && principal.kind !== 'jwt') || principal.models.length === 0) return;
  if (!matcherOf(principal.models)(modelName)) throw denied(`this credential may not use model '${modelName}'`);
}
