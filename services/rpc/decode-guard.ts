/**
 * Requests that cannot be decoded are the caller's mistake, so they are answered
 * INVALID_ARGUMENT with the reason. grpc-js answers a request whose deserializer throws with
 * INTERNAL "Error deserializing request" and no reason, which tells a client nothing and looks
 * like our fault. So every method's deserializer is wrapped to return an `UndecodableRequest`
 * instead of throwing, and one server interceptor turns that into the status before any handler
 * sees it: unary, client-, server- and bidirectional-streaming methods alike.
 */
import {
  ServerInterceptingCall, ServerListenerBuilder, status, type ServerInterceptor, type ServiceDefinition,
} from '@grpc/grpc-js';

/** What a method's deserializer yields for bytes it could not decode. */
class UndecodableRequest {
  readonly reason: string;

  constructor(reason: string) {
    this.reason = reason;
  }
}

/** The reason a client can act on, from the decoder's error. */
function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  // ts-proto represents 64-bit integers as JavaScript numbers and refuses what they cannot hold.
  if (/MAX_SAFE_INTEGER|MIN_SAFE_INTEGER/.test(message)) {
    return 'a 64-bit integer field is outside ±(2^53 - 1), the range this server decodes exactly; '
      + 'send INT64/UINT64 tensor values beyond it in raw_input_contents';
  }
  return `${message.slice(0, 200)} (a truncated or malformed protobuf message)`;
}

/** `definition` with every request deserializer made total (see the module comment). */
export function withTotalDeserializers(definition: ServiceDefinition): ServiceDefinition {
  const guarded: Record<string, ServiceDefinition[string]> = {};
  for (const [name, method] of Object.entries(definition)) {
    const decode = method.requestDeserialize;
    guarded[name] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (error) {
          return new UndecodableRequest(reasonOf(error));
        }
      },
    };
  }
  return guarded;
}

/** Answers an undecodable request INVALID_ARGUMENT before the method's handler is reached. */
export const rejectUndecodableRequests: ServerInterceptor = (methodDescriptor, call) => {
  const guarded: ServerInterceptingCall = new ServerInterceptingCall(call, {
    start: (next) => next(new ServerListenerBuilder()
      .withOnReceiveMessage((message, passOn) => {
        if (message instanceof UndecodableRequest) {
          guarded.sendStatus({
            code: status.INVALID_ARGUMENT,
            details: `the ${methodDescriptor.path} request could not be decoded: ${message.reason}`,
          });
        } else {
          passOn(message);
        }
      })
      .build()),
  });
  return guarded;
};
