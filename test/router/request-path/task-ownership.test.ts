/** A task is its submitter's: another principal reads, watches or cancels it as if it did not exist. */
import { describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import type { ModelInferRequest } from '../../../services/protocol/generated/inference/grpc_service.ts';
import { TaskStore } from '../../../services/router/request-path/task-store.ts';

const request: ModelInferRequest = {
  modelName: 'm', modelVersion: '', id: '', parameters: {}, outputs: [],
  inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 4], parameters: {}, contents: undefined }], rawInputContents: [new Uint8Array(16)],
};

/** A store whose requests are admitted and stay queued until cancelled. */
function queuedStore(): TaskStore {
  return new TaskStore((_request, context) => {
    context.onAdmitted?.();
    context.onEnqueued?.({ standing: () => ({ position: 0, estimatedWaitMs: 0 }) });
    return new Promise((_resolve, reject) => context.signal?.addEventListener('abort', () => reject(Object.assign(new Error('cancelled'), { code: ErrorCode.CANCELLED }))));
  });
}

describe('task ownership', () => {
  it('lets the owner and an unrestricted viewer see a task, and answers NOT_FOUND to anyone else', async () => {
    const store = queuedStore();
    const { taskId } = await store.submit(request, 'key:aaaaaaaaaaaa');
    expect(store.get(taskId, 'key:aaaaaaaaaaaa').taskId).toBe(taskId);
    expect(store.get(taskId).taskId).toBe(taskId);
    const unknown = (() => { try { store.get('no-such-task', 'key:bbbbbbbbbbbb'); } catch (error) { return error; } })();
    const foreign = (() => { try { store.get(taskId, 'key:bbbbbbbbbbbb'); } catch (error) { return error; } })();
    expect(foreign).toMatchObject({ code: ErrorCode.NOT_FOUND });
    // The same answer as for an id that never existed, so ids cannot be probed.
    expect((foreign as Error).message.replace(taskId, 'ID')).toBe((unknown as Error).message.replace('no-such-task', 'ID'));
    await expect(store.cancel(taskId, 'key:bbbbbbbbbbbb')).rejects.toMatchObject({ code: ErrorCode.NOT_FOUND });
    expect(() => store.onFinished(taskId, () => {}, 'key:bbbbbbbbbbbb')).toThrow(/no task/);
    const cancelled = await store.cancel(taskId, 'key:aaaaaaaaaaaa');
    expect(cancelled.errorCode).toBe(ErrorCode.CANCELLED);
  });
});
