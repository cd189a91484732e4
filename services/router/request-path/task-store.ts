/**
 * Asynchronous inference (nexus.router.v1.Tasks) on the one request path. A submitted request is
 * routed and validated at once (bad input fails the submit, not the task), then queued like any
 * other; its status is read, watched or cancelled by id. Finished tasks are kept for
 * `retentionMs`, and at most `maxTasks` are held.
 */
import { randomUUID } from 'node:crypto';
import type { ModelInferRequest, ModelInferResponse } from '../../protocol/generated/inference/grpc_service.ts';
import { TaskState, type TaskStatus } from '../../protocol/generated/nexus/router/v1/tasks.ts';
import { ErrorCode, invalidArgument, NexusError, notFound } from '../../domain/index.ts';
import type { QueuePlace, RequestPath } from './request-path.ts';

export interface TaskStoreOptions {
  /** Tasks held at once, finished ones included. Default 10000. */
  maxTasks?: number;
  /** How long a finished task stays readable, in milliseconds. Default 10 minutes. */
  retentionMs?: number;
  /** Bytes of requests and responses held, finished tasks included; new tasks past it are refused. Default 256 MiB. */
  maxTaskBytes?: number;
}

/** Bytes a request or response holds in tensors (raw and typed contents), roughly as on the wire. Pure. */
export function tensorBytesOf(message: Pick<ModelInferRequest, 'inputs' | 'rawInputContents'> | Pick<ModelInferResponse, 'outputs' | 'rawOutputContents'> | undefined): number {
  if (!message) return 0;
  const tensors = 'inputs' in message ? message.inputs : message.outputs;
  const raw = 'rawInputContents' in message ? message.rawInputContents : message.rawOutputContents;
  let bytes = 0;
  for (const part of raw) bytes += part.byteLength;
  for (const tensor of tensors) {
    bytes += 64 + tensor.name.length;
    const contents = tensor.contents;
    if (!contents) continue;
    bytes += 8 * (contents.fp64Contents.length + contents.int64Contents.length + contents.uint64Contents.length)
      + 4 * (contents.fp32Contents.length + contents.intContents.length + contents.uintContents.length) + contents.boolContents.length;
    for (const value of contents.bytesContents) bytes += value.byteLength;
  }
  return bytes;
}

interface Task {
  status: TaskStatus;
  /** The principal that submitted it; only it (or an admin) may read, watch or cancel it. */
  owner: string;
  /** Bytes of its request, and of its response once it has one. */
  bytes: number;
  place: QueuePlace | undefined;
  controller: AbortController;
  watchers: Set<(status: TaskStatus) => void>;
}

/** Whether a task has its final state. */
export const isFinished = (state: TaskState) => state !== TaskState.TASK_STATE_QUEUED;

export class TaskStore {
  private readonly handle: RequestPath['handle'];
  private readonly maxTasks: number;
  private readonly retentionMs: number;
  private readonly maxTaskBytes: number;
  private readonly tasks = new Map<string, Task>();
  /** Bytes of every held task. */
  private heldBytes = 0;

  constructor(handle: RequestPath['handle'], options: TaskStoreOptions = {}) {
    this.handle = handle;
    this.maxTasks = options.maxTasks ?? 10_000;
    this.retentionMs = options.retentionMs ?? 10 * 60_000;
    this.maxTaskBytes = options.maxTaskBytes ?? 256 * 1024 * 1024;
  }

  /** Bytes of requests and responses held now. */
  get bytes(): number {
    return this.heldBytes;
  }

  private forget(id: string, task: Task): void {
    this.tasks.delete(id);
    this.heldBytes -= task.bytes;
  }

  /** Drops expired finished tasks, then the oldest finished ones while over the bound. */
  private evict(): void {
    const now = Date.now();
    for (const [id, task] of this.tasks) {
      if (isFinished(task.status.state) && now - task.status.finishedAtUnixMs > this.retentionMs) this.forget(id, task);
    }
    for (const [id, task] of this.tasks) {
      if (this.tasks.size < this.maxTasks && this.heldBytes <= this.maxTaskBytes) break;
      if (isFinished(task.status.state)) this.forget(id, task);
    }
  }

  /** The status with a fresh queue position and wait estimate while queued. */
  private current(task: Task): TaskStatus {
    if (task.status.state !== TaskState.TASK_STATE_QUEUED || !task.place) return task.status;
    const standing = task.place.standing();
    return { ...task.status, queuePosition: standing?.position ?? 0, estimatedWaitMs: standing?.estimatedWaitMs ?? 0 };
  }

  private finish(task: Task, patch: Partial<TaskStatus>): void {
    if (isFinished(task.status.state)) return;
    task.status = { ...task.status, queuePosition: 0, estimatedWaitMs: 0, finishedAtUnixMs: Date.now(), ...patch };
    const responseBytes = tensorBytesOf(task.status.response);
    task.bytes += responseBytes;
    if (this.tasks.get(task.status.taskId) === task) this.heldBytes += responseBytes;
    for (const watcher of task.watchers) watcher(task.status);
    task.watchers.clear();
  }

  /**
   * The task, when `viewer` may see it: its owner, or anyone when `viewer` is undefined (an
   * admin, or authentication off). Another principal's task answers as an unknown one does, so
   * ids cannot be probed.
   */
  private find(taskId: string, viewer: string | undefined): Task {
    if (!taskId) throw invalidArgument('task_id is required');
    const found = this.tasks.get(taskId);
    const task = found && (viewer === undefined || found.owner === viewer) ? found : undefined;
    if (!task) throw notFound(`no task '${taskId.slice(0, 100)}' (unknown, or finished more than ${this.retentionMs / 1000} s ago)`);
    return task;
  }

  /**
   * Submits a request. Rejects as the request path would when the request is refused before it
   * is admitted (unknown model, bad input); otherwise answers once the request holds its place in
   * the queue (or has already finished), so the position reported is real.
   */
  async submit(request: ModelInferRequest | undefined, owner = ''): Promise<TaskStatus> {
    if (!request) throw invalidArgument('request is required');
    this.evict();
    if (this.tasks.size >= this.maxTasks) {
      throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED, `${this.maxTasks} tasks are pending; retry when some have finished`);
    }
    const requestBytes = tensorBytesOf(request);
    if (this.heldBytes + requestBytes > this.maxTaskBytes) {
      throw new NexusError(ErrorCode.RESOURCE_EXHAUSTED,
        `tasks hold ${this.heldBytes} bytes of requests and responses; this one's ${requestBytes} would pass the task byte budget of ${this.maxTaskBytes}; retry when some have finished or been read`);
    }
    const taskId = randomUUID();
    const task: Task = {
      owner, bytes: requestBytes, place: undefined, controller: new AbortController(), watchers: new Set(),
      status: {
        taskId, state: TaskState.TASK_STATE_QUEUED, queuePosition: 0, estimatedWaitMs: 0, response: undefined,
        errorCode: 0, errorMessage: '', submittedAtUnixMs: 0, finishedAtUnixMs: 0,
      },
    };
    let admitted = false;
    let refusal: unknown;
    let placed: () => void = () => {};
    const inQueue = new Promise<void>((resolve) => { placed = resolve; });
    this.handle(request, {
      callDeadlineMs: undefined,
      signal: task.controller.signal,
      onAdmitted: () => {
        admitted = true;
        task.status.submittedAtUnixMs = Date.now();
        this.tasks.set(taskId, task);
        this.heldBytes += task.bytes;
      },
      onEnqueued: (place) => {
        task.place = place;
        placed();
      },
    }).then(
      (response) => this.finish(task, { state: TaskState.TASK_STATE_SUCCEEDED, response }),
      (error: unknown) => {
        if (!admitted) {
          refusal = error;
          return;
        }
        const coded = NexusError.from(error);
        const state = coded.code === ErrorCode.CANCELLED ? TaskState.TASK_STATE_CANCELLED : TaskState.TASK_STATE_FAILED;
        this.finish(task, { state, errorCode: coded.code, errorMessage: coded.message });
      },
    ).finally(placed);
    await inQueue;
    if (!admitted) throw refusal;
    return this.current(task);
  }

  /** A task's status now; NOT_FOUND when unknown, expired or not `viewer`'s (see find). */
  get(taskId: string, viewer?: string): TaskStatus {
    return this.current(this.find(taskId, viewer));
  }

  /** Cancels a task (a queued request leaves its queue) and answers its status after. */
  async cancel(taskId: string, viewer?: string): Promise<TaskStatus> {
    const task = this.find(taskId, viewer);
    task.controller.abort();
    // Aborting removes a queued request at once; give its rejection a turn to land.
    await new Promise((resolve) => setImmediate(resolve));
    return this.current(task);
  }

  /** Calls `listener` once with the task's final status; returns a function that stops listening. */
  onFinished(taskId: string, listener: (status: TaskStatus) => void, viewer?: string): () => void {
    const task = this.find(taskId, viewer);
    task.watchers.add(listener);
    return () => task.watchers.delete(listener);
  }
}
