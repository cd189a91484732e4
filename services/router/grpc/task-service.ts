/** nexus.router.v1.Tasks: the task store (request-path/task-store.ts) over gRPC. */
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import {
  TasksService, type SubmitTaskRequest, type TaskStatus, type WatchTaskRequest, type WatchTaskResponse,
} from '../../protocol/generated/nexus/router/v1/tasks.ts';
import { serverStream, unary } from '../../rpc/handlers.ts';
import type { Logger } from '../../telemetry/logger.ts';
import { isFinished, type TaskStore } from '../request-path/index.ts';

/** The handlers of nexus.router.v1.Tasks over `store`. */
export function createTaskService(store: TaskStore, logger: Logger): UntypedServiceImplementation {
  return {
    submitTask: unary('SubmitTask', logger, async (request: SubmitTaskRequest) => ({ status: await store.submit(request.request) })),

    getTask: unary('GetTask', logger, async (request: { taskId: string }) => ({ status: store.get(request.taskId) })),

    cancelTask: unary('CancelTask', logger, async (request: { taskId: string }) => ({ status: await store.cancel(request.taskId) })),

    watchTask: serverStream('WatchTask', logger, async (request: WatchTaskRequest, call: ServerWritableStream<WatchTaskRequest, WatchTaskResponse>) => {
      const initial = store.get(request.taskId);
      call.write({ status: initial });
      if (isFinished(initial.state)) return;
      await new Promise<void>((resolve) => {
        const stop = store.onFinished(request.taskId, (status: TaskStatus) => {
          call.write({ status });
          resolve();
        });
        call.on('cancelled', () => {
          stop();
          resolve();
        });
      });
    }),
  };
}

export { TasksService };
