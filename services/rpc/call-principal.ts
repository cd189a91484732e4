/**
 * The principal each call was authenticated as, kept beside the call object by the server's
 * authentication step (see server.ts) so handlers can read it without threading it through
 * every signature. A call that was never authenticated (authentication off) reads ANONYMOUS.
 */
import { ANONYMOUS, type Principal } from '../auth/principal.ts';

const principals = new WeakMap<object, Principal>();

export function setPrincipal(call: object, principal: Principal): void {
  principals.set(call, principal);
}

/** Who made this call. */
export function principalOf(call: object): Principal {
  return principals.get(call) ?? ANONYMOUS;
}
