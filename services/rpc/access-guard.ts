/**
 * Authentication and authorization in front of every method of a mounted service: the call is
 * authenticated (services/auth/authenticator.ts), checked against the method's entry in the
 * service's access table (and, for unary and server-streaming calls, the model its request
 * names), and only then handed to the method's handler, which reads `principalOf(call)`. A
 * refusal answers the call with its status and is counted like any other answered call.
 *
 * Each method's handler is wrapped once, when the server starts, rather than through a server
 * interceptor, which would cost every call (ModelInfer included) a wrapped call object and
 * listener chain. A call whose credentials are checked synchronously (API keys, certificates,
 * cached JWTs) allocates nothing here beyond the principal's place in a WeakMap.
 */
import type { MethodDefinition, sendUnaryData, ServiceError, UntypedHandleCall, UntypedServiceImplementation } from '@grpc/grpc-js';
import { authorize, type MethodAccess, type ServiceAccess } from '../auth/access.ts';
import type { Authenticator, CallCredentials } from '../auth/authenticator.ts';
import type { Principal } from '../auth/principal.ts';
import { codeName, ErrorCode, NexusError } from '../domain/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import { metrics } from '../telemetry/metrics.ts';
import { principalOf, setPrincipal } from './call-principal.ts';
import { toServiceError } from './status.ts';

/** How a server authenticates its callers. */
export interface ServerAuth {
  authenticator: Authenticator;
  /** Refusals are logged here (debug); its `service` binding labels them in the rpc metrics. */
  logger: Logger;
  /**
   * Told of every call refused before its handler ran (e.g. for an audit log). `principal` is
   * the authenticated principal's id, or 'unauthenticated' when authentication itself failed.
   */
  onRefused?: (refused: { method: string; principal: string; code: string; reason: string }) => void;
}

/** A call of any of the four kinds as the guard sees it: its credentials, and the request when it carries one. */
type GuardedCall = CallCredentials & { request?: unknown; cancelled: boolean; emit(event: 'error', error: ServiceError): boolean };
/** A handler of any kind: grpc-js passes a callback to unary and client-streaming ones only. */
type AnyHandler = (call: GuardedCall, callback: sendUnaryData<unknown> | undefined) => void;

/** What every call of one method shares, resolved when the server starts. */
interface GuardedMethod {
  /** The method as clients name it, e.g. "ModelInfer". */
  label: string;
  access: MethodAccess | undefined;
  /** The table's `modelOf` when the request is there to read (unary and server streaming). */
  modelOf: ((request: unknown) => string | undefined) | undefined;
  serviceName: string;
  auth: ServerAuth;
  /** Refusals' counter labels by status code, built on first use. */
  refusalLabels: Map<number, { service: string; method: string; code: string }>;
  metricsService: string;
}

/** Authorizes an authenticated call and records its principal; throws PERMISSION_DENIED. */
function authorizeCall(method: GuardedMethod, call: GuardedCall, principal: Principal): Principal {
  // Recorded before the checks, so a refusal can name whom it refused.
  setPrincipal(call, principal);
  if (!method.access) {
    throw new NexusError(ErrorCode.PERMISSION_DENIED, `${method.label} is refused: it has no entry in ${method.serviceName}'s access table`);
  }
  authorize(principal, method.access, method.label, method.modelOf?.(call.request));
  return principal;
}

/** The principal of an admitted call (or a promise of it); throws a NexusError for a refused one. */
function admit(method: GuardedMethod, call: GuardedCall): Principal | Promise<Principal> {
  const authenticated = method.auth.authenticator.authenticate(call);
  if (authenticated instanceof Promise) return authenticated.then((principal) => authorizeCall(method, call, principal));
  return authorizeCall(method, call, authenticated);
}

/** Counts and logs a refusal; returns the status to answer with. */
function refusal(method: GuardedMethod, call: GuardedCall, error: unknown): ServiceError {
  const coded = NexusError.from(error);
  if (method.auth.onRefused) {
    const principal = principalOf(call);
    method.auth.onRefused({
      method: method.label, principal: principal.kind === 'anonymous' ? 'unauthenticated' : principal.id, code: codeName(coded.code), reason: coded.message,
    });
  }
  if (coded.code === ErrorCode.INTERNAL) method.auth.logger.error({ err: error, method: method.label }, 'authentication failed');
  else method.auth.logger.debug({ method: method.label, code: codeName(coded.code), reason: coded.message }, 'call refused');
  let labels = method.refusalLabels.get(coded.code);
  if (!labels) {
    labels = { service: method.metricsService, method: method.label, code: codeName(coded.code) };
    method.refusalLabels.set(coded.code, labels);
  }
  metrics.rpcRequests.inc(labels);
  return toServiceError(coded) as ServiceError;
}

/** Runs `handler` once the call is admitted; otherwise answers it through `refuse`. */
function guarded(method: GuardedMethod, handler: AnyHandler, refuse: (call: GuardedCall, callback: sendUnaryData<unknown> | undefined, status: ServiceError) => void): AnyHandler {
  return (call, callback) => {
    let admitted: Principal | Promise<Principal>;
    try {
      admitted = admit(method, call);
    } catch (error) {
      refuse(call, callback, refusal(method, call, error));
      return;
    }
    if (!(admitted instanceof Promise)) {
      handler(call, callback);
      return;
    }
    admitted.then(
      () => {
        if (!call.cancelled) handler(call, callback);
      },
      (error: unknown) => refuse(call, callback, refusal(method, call, error)),
    );
  };
}

const answerCallback = (_call: GuardedCall, callback: sendUnaryData<unknown> | undefined, status: ServiceError) => callback!(status);
const answerStream = (call: GuardedCall, _callback: unknown, status: ServiceError) => {
  call.emit('error', status);
};

/**
 * `implementation` with every method guarded by `access` (see the module comment). A method
 * without an entry is refused PERMISSION_DENIED after authentication, and named in a warning now.
 */
export function guardedImplementation(
  mount: { name: string; definition: Record<string, MethodDefinition<unknown, unknown>>; implementation: UntypedServiceImplementation; access?: ServiceAccess },
  auth: ServerAuth,
): UntypedServiceImplementation {
  if (!mount.access) throw new Error(`${mount.name} is mounted on an authenticating server without an access table`);
  const metricsService = String(auth.logger.bindings().service ?? 'unknown');
  const guardedMethods: UntypedServiceImplementation = {};
  for (const [name, definition] of Object.entries(mount.definition)) {
    const handler = mount.implementation[name] as UntypedHandleCall | undefined;
    if (!handler) continue;
    const access = Object.hasOwn(mount.access, name) ? mount.access[name] : undefined;
    if (!access) auth.logger.warn({ service: mount.name, method: name }, 'method has no access entry; every call to it is refused');
    if (access && 'open' in access) {
      // Open to anyone, credentials or not (liveness, readiness): nothing to check.
      guardedMethods[name] = handler;
      continue;
    }
    const readsRequest = !definition.requestStream;
    const method: GuardedMethod = {
      label: definition.path.slice(definition.path.lastIndexOf('/') + 1),
      access,
      modelOf: readsRequest && access && 'role' in access ? access.modelOf as GuardedMethod['modelOf'] : undefined,
      serviceName: mount.name,
      auth,
      refusalLabels: new Map(),
      metricsService,
    };
    // Unary and client-streaming calls answer through their callback, the others on the stream.
    const refuse = definition.responseStream ? answerStream : answerCallback;
    guardedMethods[name] = guarded(method, handler as unknown as AnyHandler, refuse) as unknown as UntypedHandleCall;
  }
  return guardedMethods;
}
