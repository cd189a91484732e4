/** nexus.router.v1.Tasks: the task store (request-path/task-store.ts) over gRPC. */
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  TasksService, type SubmitTaskRequest, type TaskStatus, type WatchTaskRequest, type WatchTaskResponse,
} from '../../protocol/generated/nexus/router/v1/tasks.ts';
import { serverStream, unary } from '../../rpc/handlers.ts';
import { principalOf } from '../../rpc/call-principal.ts';
import type { Principal } from '../../auth/principal.ts';
import { PrincipalLimiter, type Admission } from '../../auth/rate-limits.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { isFinished, type TaskStore } from '../request-path/index.ts';

/**
 * The handlers of nexus.router.v1.Tasks over `store`. A submitted task counts against its
 * principal's limits as a call does, and holds its place among the principal's calls in flight
 * until it finishes. Default `limiter`: a principal's own limits only.
 */
/**
 * Whose tasks a principal may see: its own; every task for an admin, a service, or when
 * authentication is off (undefined).
 */
function viewerOf(principal: Principal): string | undefined {
  if (principal.kind === 'anonymous' || principal.kind === 'service') return undefined;
  return principal.role === 'admin' ? undefined : principal.id;
}

export function createTaskService(store: TaskStore, logger: Logger, limiter = new PrincipalLimiter()): UntypedServiceImplementation {
  /** Releases `admission` once the task has its final state, at once if it has it already (or was forgotten). */
  const releaseWhenFinished = (taskId: string, admission: Admission) => {
    try {
      store.onFinished(taskId, () => admission.release());
      if (!isFinished(store.get(taskId).state)) return;
    } catch {
      // NOT_FOUND: finished and already evicted.
    }
    admission.release();
  };
  return {
    submitTask: unary('SubmitTask', logger, async (request: SubmitTaskRequest, call) => {
      const principal = principalOf(call);
      if (!limiter.limitsOf(principal)) return { status: await store.submit(request.request, principal.id) };
      const admission = await limiter.admit(principal, request.request?.inputs[0]?.shape[0]);
      let status: TaskStatus;
      try {
        status = await store.submit(request.request, principal.id);
      } catch (error) {
        admission.release();
        throw error;
      }
      releaseWhenFinished(status.taskId, admission);
      return { status };
    }),

    getTask: unary('GetTask', logger, async (request: { taskId: string }, call) => ({ status: store.get(request.taskId, viewerOf(principalOf(call))) })),

    cancelTask: unary('CancelTask', logger, async (request: { taskId: string }, call) => ({
      status: await store.cancel(request.taskId, viewerOf(principalOf(call))),
    })),

    watchTask: serverStream('WatchTask', logger, async (request: WatchTaskRequest, call: ServerWritableStream<WatchTaskRequest, WatchTaskResponse>) => {
      const viewer = viewerOf(principalOf(call));
      const initial = store.get(request.taskId, viewer);
      call.write({ status: initial });
      if (isFinished(initial.state)) return;
      await new Promise<void>((resolve) => {
        const stop = store.onFinished(request.taskId, (status: TaskStatus) => {
          call.write({ status });
          resolve();
        }, viewer);
        call.on('cancelled', () => {
          stop();
          resolve();
        });
      });
    }),
  };
}

export { TasksService };
