/**
 * The one error type NexusML code throws. Its code comes from a closed set, the canonical status
 * codes of google.rpc.Code (which gRPC, KServe and Triton all answer with), so pure code can say
 * exactly what went wrong without knowing any transport. Servers translate it to their wire
 * status once, at the edge (services/rpc/status.ts); anything that is not a NexusError is
 * normalised by `NexusError.from` and answered as INTERNAL.
 */

/** google.rpc.Code values; the numbers are the protocol's, defined here so no transport is imported. */
export const ErrorCode = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const codeNames = new Map<number, string>(Object.entries(ErrorCode).map(([name, code]) => [code, name]));

/** The name of a status code, e.g. 3 → "INVALID_ARGUMENT". */
export function codeName(code: number): string {
  return codeNames.get(code) ?? (code === 0 ? 'OK' : `CODE_${code}`);
}

/** An error that came back from a remote call: it carries a numeric status code (and details). */
export interface CodedRemoteError extends Error {
  code: number;
  details?: string;
}

/** True for an error from a remote call (grpc-js's ServiceError has this shape). */
export function isCodedRemoteError(error: unknown): error is CodedRemoteError {
  return error instanceof Error && typeof (error as Partial<CodedRemoteError>).code === 'number';
}

/** What a NexusError may carry besides its code and message. */
export interface NexusErrorOptions {
  cause?: unknown;
  /**
   * How long the caller should wait before trying again, in milliseconds (a rate limit's
   * refusal); the edge sends it as `retry-after` and google.rpc.RetryInfo. Absent: no advice.
   */
  retryAfterMs?: number;
}

export class NexusError extends Error {
  readonly code: ErrorCode;
  readonly retryAfterMs?: number;

  constructor(code: ErrorCode, message: string, options?: NexusErrorOptions) {
    super(message, options);
    this.name = 'NexusError';
    this.code = code;
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }

  /**
   * Normalises anything thrown into a NexusError: coded errors pass through, errors from a
   * downstream call keep their code, and everything else becomes INTERNAL.
   */
  static from(error: unknown): NexusError {
    if (error instanceof NexusError) return error;
    if (isCodedRemoteError(error)) {
      const code = codeNames.has(error.code) ? (error.code as ErrorCode) : ErrorCode.INTERNAL;
      return new NexusError(code, error.details || error.message, { cause: error });
    }
    const message = error instanceof Error ? error.message : String(error);
    return new NexusError(ErrorCode.INTERNAL, `internal error: ${message}`, { cause: error });
  }
}

export const invalidArgument = (message: string) => new NexusError(ErrorCode.INVALID_ARGUMENT, message);
export const notFound = (message: string) => new NexusError(ErrorCode.NOT_FOUND, message);
export const failedPrecondition = (message: string) => new NexusError(ErrorCode.FAILED_PRECONDITION, message);
