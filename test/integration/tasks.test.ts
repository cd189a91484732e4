/** The asynchronous task API: submit, poll, watch, cancel. */
import { credentials, status, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelInferRequest } from '../../services/protocol/generated/inference/grpc_service.ts';
import { TasksClient, TaskState, type TaskStatus, type WatchTaskResponse } from '../../services/protocol/generated/nexus/router/v1/tasks.ts';
import { trainIrisModel, type TrainedIrisModel } from '../../services/examples/iris/train.ts';
import { fp32Contents, startCluster, type Cluster } from './harness.ts';

let cluster: Cluster;
let tasks: TasksClient;
let iris: TrainedIrisModel;

beforeAll(async () => {
  // A lone request waits 400 ms for company even with nothing running (Triton's rule), long
  // enough to see tasks queued.
  cluster = await startCluster({ policy: { maxBatchSize: 32, maxQueueDelayMs: 400, maxQueueSize: 64, waitWhenIdle: true } });
  iris = trainIrisModel();
  await cluster.store('iris', iris.onnx);
  await cluster.waitUntilReady('iris');
  tasks = new TasksClient(cluster.router.address, credentials.createInsecure());
});

afterAll(async () => {
  tasks?.close();
  await cluster?.stop();
});

const flowerRequest = (rows: number[][]): ModelInferRequest => ({
  modelName: 'iris', modelVersion: '', id: 'task', parameters: {}, outputs: [], rawInputContents: [],
  inputs: [{ name: 'features', datatype: 'FP32', shape: [rows.length, 4], parameters: {}, contents: fp32Contents(rows.flat()) }],
});

const submit = (request: ModelInferRequest) => new Promise<TaskStatus>((resolve, reject) =>
  tasks.submitTask({ request }, (error, response) => (error ? reject(error) : resolve(response.status!))));
const get = (taskId: string) => new Promise<TaskStatus>((resolve, reject) =>
  tasks.getTask({ taskId }, (error, response) => (error ? reject(error) : resolve(response.status!))));
const cancel = (taskId: string) => new Promise<TaskStatus>((resolve, reject) =>
  tasks.cancelTask({ taskId }, (error, response) => (error ? reject(error) : resolve(response.status!))));
function watch(taskId: string): Promise<TaskStatus[]> {
  return new Promise((resolve, reject) => {
    const seen: TaskStatus[] = [];
    const stream = tasks.watchTask({ taskId });
    stream.on('data', (message: WatchTaskResponse) => seen.push(message.status!));
    stream.on('end', () => resolve(seen));
    stream.on('error', reject);
  });
}

describe('tasks', () => {
  it('queues a task, reports its place, and delivers the answer to a watcher', async () => {
    const rows = [[5.1, 3.5, 1.4, 0.2]];
    const first = await submit(flowerRequest(rows));
    const second = await submit(flowerRequest([[6.7, 3.0, 5.2, 2.3]]));
    expect(first.state).toBe(TaskState.TASK_STATE_QUEUED);
    expect(second.queuePosition).toBe(1);
    expect((await get(first.taskId)).state).toBe(TaskState.TASK_STATE_QUEUED);

    const updates = await watch(first.taskId);
    expect(updates[0].state).toBe(TaskState.TASK_STATE_QUEUED);
    const final = updates.at(-1)!;
    expect(final.state).toBe(TaskState.TASK_STATE_SUCCEEDED);
    const values = final.response!.outputs[0].contents!.fp32Contents;
    iris.predict(rows).flat().forEach((expected, index) => expect(values[index]).toBeCloseTo(expected, 4));
    expect((await get(second.taskId)).state).toBe(TaskState.TASK_STATE_SUCCEEDED);
  });

  it('cancels a queued task, which then never runs', async () => {
    const before = await cluster.executorStats();
    const task = await submit(flowerRequest([[5.0, 3.0, 1.0, 0.5]]));
    const cancelled = await cancel(task.taskId);
    expect(cancelled.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(cancelled.errorCode).toBe(status.CANCELLED);
    await new Promise((wake) => setTimeout(wake, 500));
    expect((await cluster.executorStats()).batchesBySize).toEqual(before.batchesBySize);
  });

  it('fails the submit itself for bad input, and answers NOT_FOUND for an unknown task', async () => {
    const bad = await submit({ ...flowerRequest([[1, 2, 3, 4]]), modelName: 'nope' }).catch((error: ServiceError) => error);
    expect((bad as ServiceError).code).toBe(status.NOT_FOUND);
    const unknown = await get('no-such-task').catch((error: ServiceError) => error);
    expect((unknown as ServiceError).code).toBe(status.NOT_FOUND);
  });
});
