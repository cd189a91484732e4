/**
 * Requests that cannot be decoded are the caller's mistake, so they are answered
 * INVALID_ARGUMENT with the reason. grpc-js answers a request whose deserializer throws with
 * INTERNAL "Error deserializing request" and no reason, which tells a client nothing and looks
 * like our fault. So every method's deserializer is wrapped to return an `UndecodableRequest`
 * instead of throwing, and one server interceptor turns that into the status before any handler
 * sees it: unary, client-, server- and bidirectional-streaming methods alike. A map key that
 * would replace an object's prototype is refused the same way.
 *
 * A request carrying typed tensor contents whose INT64 / UINT64 values a JavaScript number cannot
 * hold is decoded again, exactly (see protocol/int64-contents.ts); only such a request pays for it.
 */
import {
  ServerInterceptingCall, ServerListenerBuilder, status, type ServerInterceptor, type ServiceDefinition,
} from '@grpc/grpc-js';
import { exactDecoderFor, FieldOutOfRange } from '../protocol/int64-contents.ts';

/** What a method's deserializer yields for bytes it could not decode. */
class UndecodableRequest {
  readonly reason: string;
  /** The method's handler answers it itself (a stream that reports errors per message). */
  readonly forHandler: boolean;

  constructor(reason: string, forHandler: boolean) {
    this.reason = reason;
    this.forHandler = forHandler;
  }
}

/**
 * Why a message handed to a handler that answers undecodable messages itself (see
 * `withTotalDeserializers`) could not be decoded; undefined for a decoded message.
 */
export function undecodableReason(message: unknown): string | undefined {
  return message instanceof UndecodableRequest ? message.reason : undefined;
}

/** ts-proto represents 64-bit integers as JavaScript numbers and refuses what they cannot hold. */
const isBeyondNumberRange = (error: unknown) => error instanceof Error && /MAX_SAFE_INTEGER|MIN_SAFE_INTEGER/.test(error.message);

/** The reason a client can act on, from the decoder's error. */
function reasonOf(error: unknown): string {
  if (error instanceof FieldOutOfRange) return error.message;
  if (isBeyondNumberRange(error)) return 'a 64-bit integer field is outside ±(2^53 - 1), the range this server decodes exactly';
  const message = error instanceof Error ? error.message : String(error);
  return `${message.slice(0, 200)} (a truncated or malformed protobuf message)`;
}

/**
 * `decode`, or for a method whose request carries typed tensor contents, `decode` and, when it
 * throws for a 64-bit value beyond what a number holds, the exact decoder.
 */
function withExactFallback(path: string, decode: (bytes: Buffer) => unknown): (bytes: Buffer) => unknown {
  const exact = exactDecoderFor(path);
  if (!exact) return decode;
  return (bytes) => {
    try {
      return decode(bytes);
    } catch (error) {
      if (!isBeyondNumberRange(error)) throw error;
      return exact(bytes);
    }
  };
}

/**
 * True when decoding set an object's prototype: a map entry keyed '__proto__' (a request
 * parameter, say) is assigned by the generated decoder as `map[key] = value`, which replaces the
 * map's prototype with the client's value instead of adding an entry. The walk visits messages
 * only: byte fields and arrays of scalars (tensor contents) are skipped whole, so it costs a few
 * steps per message, whatever the size of its tensors.
 */
function hasReplacedPrototype(decoded: unknown): boolean {
  const pending: object[] = typeof decoded === 'object' && decoded !== null ? [decoded] : [];
  for (let value = pending.pop(); value !== undefined; value = pending.pop()) {
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) return true;
    for (const field of Object.values(value)) {
      if (typeof field !== 'object' || field === null || ArrayBuffer.isView(field)) continue;
      if (!Array.isArray(field)) {
        pending.push(field);
      } else if (field.length > 0 && typeof field[0] === 'object' && field[0] !== null && !ArrayBuffer.isView(field[0])) {
        // Repeated messages; a repeated scalar or bytes field holds no maps.
        for (const item of field) pending.push(item);
      }
    }
  }
  return false;
}

/**
 * `definition` with every request deserializer made total (see the module comment). The methods
 * named in `answeredByHandler` (e.g. a bidirectional stream that reports an error per message, as
 * ModelStreamInfer does) get undecodable messages handed to their handler, which asks
 * `undecodableReason`; every other method's call ends INVALID_ARGUMENT.
 */
export function withTotalDeserializers(definition: ServiceDefinition, answeredByHandler: readonly string[] = []): ServiceDefinition {
  const guarded: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = withExactFallback(method.path, method.requestDeserialize);
    const forHandler = answeredByHandler.includes(name);
    guarded[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          const decoded = decode(bytes);
          return hasReplacedPrototype(decoded) ? new UndecodableRequest("'__proto__' is not accepted as a map key", forHandler) : decoded;
        } catch (error) {
          return new UndecodableRequest(reasonOf(error), forHandler);
        }
      },
    };
  }
  return guarded;
}

/** The INVALID_ARGUMENT text for an undecodable request to `path`. */
export const undecodableDetails = (path: string, reason: string) => `the ${path} request could not be decoded: ${reason}`;

/**
 * Answers an undecodable message of a client- or bidirectional-streaming call INVALID_ARGUMENT
 * before the method's handler is reached. Unary and server-streaming calls carry one request,
 * which `rpc/handlers.ts` checks before the handler runs, so those calls are not wrapped here:
 * an interceptor on every call would cost every ModelInfer.
 */
export const rejectUndecodableRequests: ServerInterceptor = (methodDescriptor, call) => {
  if (!methodDescriptor.requestStream) return call as ServerInterceptingCall;
  const guarded: ServerInterceptingCall = new ServerInterceptingCall(call, {
    start: (next) => next(new ServerListenerBuilder()
      .withOnReceiveMessage((message, passOn) => {
        if (message instanceof UndecodableRequest && !message.forHandler) {
          guarded.sendStatus({
            code: status.INVALID_ARGUMENT,
            details: undecodableDetails(methodDescriptor.path, message.reason),
          });
        } else {
          passOn(message);
        }
      })
      .build()),
  });
  return guarded;
};
