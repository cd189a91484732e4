/**
 * The edge between NexusML's coded errors and HTTP: the one mapping of a NexusError's code to an
 * HTTP status, and the error bodies the two HTTP APIs document (KServe's `{"error": "..."}` and
 * OpenAI's `{"error": {"message", "type", "param", "code"}}`). Pure.
 *
 * The statuses follow Google's HTTP mapping of the canonical codes (the one grpc-gateway uses),
 * except FAILED_PRECONDITION, which is 422 Unprocessable Entity: the request is well formed but
 * cannot be done as asked (an FP16 output asked for as JSON, a model without a tokenizer), which
 * OpenAI's clients read as UnprocessableEntityError rather than as a malformed request.
 */
import { codeName, ErrorCode, NexusError } from '../../domain/index.ts';

const STATUS_OF_CODE: Readonly<Record<ErrorCode, number>> = {
  [ErrorCode.CANCELLED]: 499,
  [ErrorCode.INVALID_ARGUMENT]: 400,
  [ErrorCode.DEADLINE_EXCEEDED]: 504,
  [ErrorCode.NOT_FOUND]: 404,
  [ErrorCode.ALREADY_EXISTS]: 409,
  [ErrorCode.PERMISSION_DENIED]: 403,
  [ErrorCode.RESOURCE_EXHAUSTED]: 429,
  [ErrorCode.FAILED_PRECONDITION]: 422,
  [ErrorCode.ABORTED]: 409,
  [ErrorCode.OUT_OF_RANGE]: 400,
  [ErrorCode.UNIMPLEMENTED]: 501,
  [ErrorCode.INTERNAL]: 500,
  [ErrorCode.UNAVAILABLE]: 503,
  [ErrorCode.DATA_LOSS]: 500,
  [ErrorCode.UNAUTHENTICATED]: 401,
};

/** The HTTP status that answers a NexusError code (500 for a code outside the closed set). */
export function httpStatusOf(code: number): number {
  return Object.hasOwn(STATUS_OF_CODE, code) ? STATUS_OF_CODE[code as ErrorCode] : 500;
}

/** A refusal of one named request field, so OpenAI's error object can say which (`param`). */
export class ParamError extends NexusError {
  readonly param: string;

  constructor(param: string, message: string, code: ErrorCode = ErrorCode.INVALID_ARGUMENT) {
    super(code, message);
    this.param = param;
  }
}

/** INVALID_ARGUMENT naming the field `param`. */
export const invalidParam = (param: string, message: string) => new ParamError(param, message);

/** The headers a refusal carries besides its body: Retry-After (whole seconds, rounded up) when it says when to come back. */
export function errorHeaders(error: NexusError): Record<string, string> {
  return error.retryAfterMs === undefined ? {} : { 'retry-after': String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))) };
}

/** KServe's (and Triton's) error body: `{"error": "<message>"}`; the message starts with the status code's name. */
export function kserveErrorBody(error: NexusError): { error: string } {
  return { error: `${codeName(error.code)}: ${error.message}` };
}

/** OpenAI's error types, by HTTP status class. */
function openAiTypeOf(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return status === 503 ? 'service_unavailable_error' : 'server_error';
  return 'invalid_request_error';
}

export interface OpenAiError {
  error: { message: string; type: string; param: string | null; code: string };
}

/** OpenAI's error object: `type` by status, `code` the canonical code's name in lower case, `param` the field when known. */
export function openAiErrorBody(error: NexusError): OpenAiError {
  const status = httpStatusOf(error.code);
  return {
    error: {
      message: error.message,
      type: openAiTypeOf(status),
      param: error instanceof ParamError ? error.param : null,
      code: status === 429 ? 'rate_limit_exceeded' : codeName(error.code).toLowerCase(),
    },
  };
}
