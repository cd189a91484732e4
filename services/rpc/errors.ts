/**
 * The one error type a NexusML server throws. Each carries a gRPC status code from a closed set,
 * so a handler answers precisely; anything else is logged in full and answered as INTERNAL.
 */
import { status, type ServiceError, Metadata } from '@grpc/grpc-js';

export const ErrorCode = {
  CANCELLED: status.CANCELLED,
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  ABORTED: status.ABORTED,
  OUT_OF_RANGE: status.OUT_OF_RANGE,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  INTERNAL: status.INTERNAL,
  UNAVAILABLE: status.UNAVAILABLE,
  DATA_LOSS: status.DATA_LOSS,
  UNAUTHENTICATED: status.UNAUTHENTICATED,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const codeNames = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

/** The name of a gRPC status code, e.g. 3 → "INVALID_ARGUMENT". */
export function codeName(code: number): string {
  return codeNames.get(code) ?? (code === 0 ? 'OK' : `CODE_${code}`);
}

export class NexusError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NexusError';
    this.code = code;
  }

  /**
   * Normalises anything thrown into a NexusError: coded errors pass through, gRPC errors from
   * a downstream call keep their code, and everything else becomes INTERNAL.
   */
  static from(error: unknown): NexusError {
    if (error instanceof NexusError) return error;
    if (isServiceError(error)) {
      const code = codeNames.has(error.code) ? (error.code as ErrorCode) : ErrorCode.INTERNAL;
      return new NexusError(code, error.details || error.message, { cause: error });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new NexusError(ErrorCode.INTERNAL, `internal error: ${message}`, { cause: error });
  }

  /** The object grpc-js sends as the call's status. */
  toServiceError(): Partial<ServiceError> {
    return { code: this.code, details: this.message, metadata: new Metadata() };
  }
}

/** True for an error that came back from a grpc-js call (it carries a numeric code). */
export function isServiceError(error: unknown): error is ServiceError {
  return error instanceof Error && typeof (error as Partial<ServiceError>).code === 'number';
}

export const invalidArgument = (message: string) => new NexusError(ErrorCode.INVALID_ARGUMENT, message);
export const notFound = (message: string) => new NexusError(ErrorCode.NOT_FOUND, message);
export const failedPrecondition = (message: string) => new NexusError(ErrorCode.FAILED_PRECONDITION, message);
