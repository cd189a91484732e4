/** The one mapping of status codes to HTTP statuses, and the two error bodies. */
import { describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/index.ts';
import { errorHeaders, httpStatusOf, invalidParam, kserveErrorBody, openAiErrorBody } from '../../../services/router/http/http-status.ts';

describe('httpStatusOf', () => {
  it('maps every code as Google\'s HTTP mapping does, FAILED_PRECONDITION to 422', () => {
    const statuses = Object.fromEntries(Object.entries(ErrorCode).map(([name, code]) => [name, httpStatusOf(code)]));
    expect(statuses).toEqual({
      CANCELLED: 499, INVALID_ARGUMENT: 400, DEADLINE_EXCEEDED: 504, NOT_FOUND: 404, ALREADY_EXISTS: 409, PERMISSION_DENIED: 403,
      RESOURCE_EXHAUSTED: 429, FAILED_PRECONDITION: 422, ABORTED: 409, OUT_OF_RANGE: 400, UNIMPLEMENTED: 501, INTERNAL: 500,
      UNAVAILABLE: 503, DATA_LOSS: 500, UNAUTHENTICATED: 401,
    });
  });

  it('answers 500 for a code outside the closed set', () => {
    expect(httpStatusOf(0)).toBe(500);
    expect(httpStatusOf(99)).toBe(500);
  });
});

describe('error bodies', () => {
  it('writes KServe\'s body with the code\'s name first', () => {
    expect(kserveErrorBody(new NexusError(ErrorCode.NOT_FOUND, "model 'x' has no version"))).toEqual({ error: "NOT_FOUND: model 'x' has no version" });
  });

  it('writes OpenAI\'s error object, with the field of a ParamError', () => {
    expect(openAiErrorBody(invalidParam('temperature', 'temperature must be a number from 0 to 2'))).toEqual({
      error: { message: 'temperature must be a number from 0 to 2', type: 'invalid_request_error', param: 'temperature', code: 'invalid_argument' },
    });
    expect(openAiErrorBody(new NexusError(ErrorCode.UNAUTHENTICATED, 'invalid credentials')).error).toMatchObject({ type: 'authentication_error', param: null });
    expect(openAiErrorBody(new NexusError(ErrorCode.RESOURCE_EXHAUSTED, 'rate limit')).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    expect(openAiErrorBody(new NexusError(ErrorCode.UNAVAILABLE, 'down')).error.type).toBe('service_unavailable_error');
  });

  it('says when to retry in whole seconds, rounded up, and nothing without advice', () => {
    expect(errorHeaders(new NexusError(ErrorCode.RESOURCE_EXHAUSTED, 'x', { retryAfterMs: 1200 }))).toEqual({ 'retry-after': '2' });
    expect(errorHeaders(new NexusError(ErrorCode.RESOURCE_EXHAUSTED, 'x', { retryAfterMs: 5 }))).toEqual({ 'retry-after': '1' });
    expect(errorHeaders(new NexusError(ErrorCode.INVALID_ARGUMENT, 'x'))).toEqual({});
  });
});
