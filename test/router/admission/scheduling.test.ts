import { describe, expect, it } from 'vitest';
import { schedulingOf } from '../../../services/router/admission/scheduling.ts';
import { ErrorCode } from '../../../services/domain/errors.ts';

const options = { defaultPriority: 2, callDeadlineMs: undefined, nowMs: 1000 };

describe('schedulingOf', () => {
  it('uses the default priority and no deadline when nothing is set', () => {
    expect(schedulingOf({}, options)).toEqual({ priority: 2, deadlineMs: undefined });
  });

  it.each([
    [{ int64Param: 1 }, 1], [{ int64Param: 3 }, 3], [{ int64Param: 0 }, 2], [{ uint64Param: 1 }, 1],
    [{ stringParam: 'high' }, 1], [{ stringParam: 'low' }, 3],
  ])('reads priority %o as level %i', (parameter, level) => {
    expect(schedulingOf({ priority: parameter }, options).priority).toBe(level);
  });

  it.each([[{ int64Param: 4 }], [{ int64Param: -1 }], [{ stringParam: 'urgent' }], [{ boolParam: true }]])(
    'rejects priority %o with INVALID_ARGUMENT', (parameter) => {
      expect(() => schedulingOf({ priority: parameter }, options)).toThrow(expect.objectContaining({
        code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining('parameters.priority'),
      }));
    });

  it('turns a timeout in microseconds into a deadline, the earlier of it and the call deadline', () => {
    expect(schedulingOf({ timeout: { int64Param: 5000 } }, options).deadlineMs).toBe(1005);
    expect(schedulingOf({ timeout: { int64Param: 5000 } }, { ...options, callDeadlineMs: 1002 }).deadlineMs).toBe(1002);
    expect(schedulingOf({}, { ...options, callDeadlineMs: 1002 }).deadlineMs).toBe(1002);
  });

  it('rejects a timeout that is not a positive integer', () => {
    expect(() => schedulingOf({ timeout: { int64Param: 0 } }, options)).toThrow(/parameters.timeout/);
    expect(() => schedulingOf({ timeout: { stringParam: '5ms' } }, options)).toThrow(/parameters.timeout/);
  });
});
