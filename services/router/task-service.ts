/**
 * nexus.router.v1.Tasks: asynchronous inference. A submitted request is validated at once (bad
 * input fails the submit, not the task), then queued like any other; clients poll or watch its
 * status. Finished tasks are kept for `retentionMs`, and at most `maxTasks` are held.
 */
import type { ServerWritableStream, UntypedServiceImplementation } from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import {
  TasksService, TaskState, type SubmitTaskRequest, type TaskStatus, type WatchTaskRequest, type WatchTaskResponse,
} from '../protocol/generated/nexus/router/v1/tasks.ts';
import { ErrorCode, NexusError, invalidArgument, notFound } from '../domain/errors.ts';
import { serverStream, unary } from '../rpc/handlers.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { createInferencePipeline, PreparedRequest } from './inference-pipeline.ts';

export interface TaskStoreOptions {
  /** Tasks held at once, finished ones included. Default 10000. */
  maxTasks?: number;
  /** How long a finished task stays readable, in milliseconds. Default 10 minutes. */
  retentionMs?: number;
}

interface Task {
  status: TaskStatus;
  prepared: PreparedRequest;
  requestId: number | undefined;
  controller: AbortController;
  watchers: Set<(status: TaskStatus) => void>;
}

const isFinished = (state: TaskState) => state !== TaskState.TASK_STATE_QUEUED;

export function createTaskService(
  pipeline: ReturnType<typeof createInferencePipeline>,
  logger: Logger,
  options: TaskStoreOptions = {},
): UntypedServiceImplementation {
  const maxTasks = options.maxTasks ?? 10_000;
  const retentionMs = options.retentionMs ?? 10 * 60_000;
  const tasks = new Map<string, Task>();

  /** Drops expired finished tasks, then the oldest finished ones while over the bound. */
  function evict(): void {
    const now = Date.now();
    for (const [id, task] of tasks) {
      if (isFinished(task.status.state) && now - task.status.finishedAtUnixMs > retentionMs) tasks.delete(id);
    }
    for (const [id, task] of tasks) {
      if (tasks.size < maxTasks) break;
      if (isFinished(task.status.state)) tasks.delete(id);
    }
  }

  /** The status with a fresh queue position and wait estimate while queued. */
  function current(task: Task): TaskStatus {
    if (task.status.state !== TaskState.TASK_STATE_QUEUED || task.requestId === undefined) return task.status;
    const standing = task.prepared.model.batcher.standing(task.requestId);
    return { ...task.status, queuePosition: standing?.position ?? 0, estimatedWaitMs: standing?.estimatedWaitMs ?? 0 };
  }

  function finish(task: Task, patch: Partial<TaskStatus>): void {
    if (isFinished(task.status.state)) return;
    task.status = { ...task.status, queuePosition: 0, estimatedWaitMs: 0, finishedAtUnixMs: Date.now(), ...patch };
    for (const watcher of task.watchers) watcher(task.status);
    task.watchers.clear();
  }

  function find(taskId: string): Task {
    if (!taskId) throw invalidArgument('task_id is required');
    const task = tasks.get(taskId);
    if (!task) throw notFound(`no task '${taskId.slice(0, 100)}' (unknown, or finished more than ${retentionMs / 1000} s ago)`);
    return task;
  }

  return {
    submitTask: unary('SubmitTask', logger, async (request: SubmitTaskRequest) => {
      if (!request.request) throw invalidArgument('request is required');
      evict();
      if (tasks.size >= maxTasks) {
        throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED, `${maxTasks} tasks are pending; retry when some have finished`);
      }
      const prepared = await pipeline.prepare(request.request, { callDeadlineMs: undefined });
      const taskId = randomUUID();
      const task: Task = {
        prepared, requestId: undefined, controller: new AbortController(), watchers: new Set(),
        status: {
          taskId, state: TaskState.TASK_STATE_QUEUED, queuePosition: 0, estimatedWaitMs: 0, response: undefined,
          errorCode: 0, errorMessage: '', submittedAtUnixMs: Date.now(), finishedAtUnixMs: 0,
        },
      };
      tasks.set(taskId, task);
      // Answer once the request holds its place in the queue (or has already finished), so the
      // position reported is real.
      let placed: () => void = () => {};
      const inQueue = new Promise<void>((resolve) => { placed = resolve; });
      pipeline.execute(prepared, {
        callDeadlineMs: undefined,
        signal: task.controller.signal,
        onEnqueued: (requestId) => {
          task.requestId = requestId;
          placed();
        },
      }).then(
        (response) => finish(task, { state: TaskState.TASK_STATE_SUCCEEDED, response }),
        (error: unknown) => {
          const coded = NexusError.from(error);
          const state = coded.code === ErrorCode.CANCELLED ? TaskState.TASK_STATE_CANCELLED : TaskState.TASK_STATE_FAILED;
          finish(task, { state, errorCode: coded.code, errorMessage: coded.message });
        },
      ).finally(placed);
      await inQueue;
      return { status: current(task) };
    }),

    getTask: unary('GetTask', logger, async (request: { taskId: string }) => ({ status: current(find(request.taskId)) })),

    cancelTask: unary('CancelTask', logger, async (request: { taskId: string }) => {
      const task = find(request.taskId);
      task.controller.abort();
      // Aborting removes a queued request at once; give its rejection a turn to land.
      await new Promise((resolve) => setImmediate(resolve));
      return { status: current(task) };
    }),

    watchTask: serverStream('WatchTask', logger, async (request: WatchTaskRequest, call: ServerWritableStream<WatchTaskRequest, WatchTaskResponse>) => {
      const task = find(request.taskId);
      call.write({ status: current(task) });
      if (isFinished(task.status.state)) return;
      await new Promise<void>((resolve) => {
        const watcher = (status: TaskStatus) => {
          call.write({ status });
          resolve();
        };
        task.watchers.add(watcher);
        call.on('cancelled', () => {
          task.watchers.delete(watcher);
          resolve();
        });
      });
    }),
  };
}

export { TasksService };
