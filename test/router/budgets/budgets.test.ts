/**
 * The router's budgets and hostile-input checks, driven through their pure parts: byte budgets of a
 * request, a queue, a batch and the task store; narrow integer ranges; prototype keys; outcome
 * ranges; stream flow control; an executor that reports a model as not loaded.
 */
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { ModelInferRequest } from '../../../services/protocol/generated/inference/grpc_service.ts';
import type { ExecutorMessage, RouterMessage } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { ErrorCode, NexusError } from '../../../services/domain/index.ts';
import { checkIntegerRange, validateInferRequest } from '../../../services/router/admission/request-validation.ts';
import { priorityLevelOf, schedulingOf } from '../../../services/router/admission/scheduling.ts';
import { BatchQueue, type QueuedRequest } from '../../../services/router/batching/batch-queue.ts';
import { budgetsOf, DEFAULT_ROUTER_BUDGETS, parseRouterConfig } from '../../../services/router/config/router-config.ts';
import { Experiment, isAcceptedOutcome } from '../../../services/router/features/experiment.ts';
import { RunningStats } from '../../../services/router/features/welch.ts';
import { ExecutorLink, isNotLoadedRefusal } from '../../../services/router/fleet/executor-link.ts';
import { streamFlow } from '../../../services/router/grpc/inference-service.ts';
import { TaskStore, tensorBytesOf } from '../../../services/router/request-path/task-store.ts';

const signature = {
  inputs: [{ name: 'x', datatype: 'FP32' as const, shape: [-1, 4] }],
  outputs: [{ name: 'y', datatype: 'FP32' as const, shape: [-1, 3] }],
};

function request(rows: number, raw = new Uint8Array(rows * 16)): ModelInferRequest {
  return {
    modelName: 'm', modelVersion: '', id: '', parameters: {}, outputs: [],
    inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], parameters: {}, contents: undefined }], rawInputContents: [raw],
  };
}

const emptyContents = () => ({
  boolContents: [], intContents: [], int64Contents: [], uintContents: [], uint64Contents: [], fp32Contents: [], fp64Contents: [], bytesContents: [],
});

const codeOf = (run: () => unknown) => {
  try {
    run();
  } catch (error) {
    return { code: (error as NexusError).code, message: (error as NexusError).message };
  }
  return { code: 0, message: '' };
};

describe('request byte budgets', () => {
  it('counts input and static output bytes', () => {
    const validated = validateInferRequest(request(2), signature, 8);
    expect(validated.inputBytes).toBe(32);
    expect(validated.outputBytes).toBe(24);
  });

  it('refuses a request whose declared shape passes the per-request budget before reading it', () => {
    // The declared shape is 1e9 rows; the data is tiny: the shape alone decides.
    const refused = codeOf(() => validateInferRequest(request(1e9, new Uint8Array(16)), signature, 2e9, { maxRequestBytes: 1024, maxBatchBytes: 4096 }));
    expect(refused.code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
    expect(refused.message).toMatch(/per-request byte budget of 1024 bytes/);
  });

  it('refuses a request whose outputs would not fit an executor message', () => {
    const wide = { inputs: signature.inputs, outputs: [{ name: 'y', datatype: 'FP64' as const, shape: [-1, 1000] }] };
    const refused = codeOf(() => validateInferRequest(request(4), wide, 8, { maxRequestBytes: 1 << 20, maxBatchBytes: 10_000 }));
    expect(refused.code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
    expect(refused.message).toMatch(/outputs would take 32000 bytes.*executor message limit of 10000/);
    const answer = codeOf(() => validateInferRequest(request(4), wide, 8, { maxRequestBytes: 1 << 20, maxBatchBytes: 1 << 20, maxResponseBytes: 90_000 }));
    expect(answer.message).toMatch(/answer would take up to 32000 bytes.*response message limit of 90000/);
  });

  it('sizes the answer by typed contents at their worst-case wire size, with room for the envelope', () => {
    const narrow = { inputs: signature.inputs, outputs: [{ name: 'y', datatype: 'INT8' as const, shape: [-1, 1000] }] };
    const limits = { maxRequestBytes: 1 << 20, maxBatchBytes: 1 << 20, maxResponseBytes: 100_000 };
    const typedRequest = (rows: number): ModelInferRequest => ({
      ...request(rows), rawInputContents: [],
      inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 4], parameters: {}, contents: { ...emptyContents(), fp32Contents: new Array(rows * 4).fill(1) } }],
    });
    // 4 rows × 1000 INT8 values: 4000 raw bytes, but up to 40 000 as varints; 40 000 + 64 KiB > 100 000.
    const typed = codeOf(() => validateInferRequest(typedRequest(4), narrow, 8, limits));
    expect(typed.code).toBe(ErrorCode.RESOURCE_EXHAUSTED);
    expect(typed.message).toMatch(/up to 40000 bytes.*as typed contents/);
    // The same rows asked for raw fit: 4000 bytes.
    expect(codeOf(() => validateInferRequest(request(4), narrow, 8, limits)).code).toBe(0);
    expect(codeOf(() => validateInferRequest(typedRequest(1), narrow, 8, limits)).code).toBe(0);
  });
});

describe('narrow integer contents', () => {
  it.each([
    ['INT8', [127, 128], 1, '[-128, 127]'], ['INT8', [-129], 0, '[-128, 127]'], ['UINT8', [0, 255, 256], 2, '[0, 255]'],
    ['UINT8', [-1], 0, '[0, 255]'], ['INT16', [40000], 0, '[-32768, 32767]'], ['UINT16', [70000], 0, '[0, 65535]'],
  ] as const)('%s refuses %j at index %i', (datatype, values, index, range) => {
    const refused = codeOf(() => checkIntegerRange('x', datatype, values));
    expect(refused.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(refused.message).toContain(`at index ${index} is outside ${datatype}'s range ${range}`);
  });

  it('accepts values in range', () => {
    expect(codeOf(() => checkIntegerRange('x', 'INT8', [-128, 0, 127])).code).toBe(0);
  });
});

describe('prototype keys', () => {
  it.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])('priority %s is no level', (name) => {
    expect(priorityLevelOf(name)).toBeUndefined();
    const refused = codeOf(() => schedulingOf({ priority: { stringParam: name } }, { defaultPriority: 2, callDeadlineMs: undefined, nowMs: 0 }));
    expect(refused.code).toBe(ErrorCode.INVALID_ARGUMENT);
  });

  it('refuses default_priority: constructor in the router config', () => {
    expect(() => parseRouterConfig('defaults:\n  default_priority: constructor\n')).toThrow(/default_priority must be high, normal or low/);
  });
});

describe('outcomes', () => {
  it.each([1e308, -1e308, Infinity, NaN, 1e12 + 1e6])('refuses %d', (value) => expect(isAcceptedOutcome(value)).toBe(false));

  it('keeps an arm finite at the edges of the accepted range', () => {
    const experiment = new Experiment({ arms: [{ version: 1, weight: 1 }, { version: 2, weight: 1 }] });
    for (const value of [1e12, -1e12, 1e12, 1e308, -1e308]) experiment.recordOutcome(1, value);
    const arm = experiment.report('m').arms[0];
    expect(arm.outcomes).toBe(3);
    expect(Number.isFinite(arm.outcomeMean) && Number.isFinite(arm.outcomeStddev)).toBe(true);
    const stats = new RunningStats();
    for (let index = 0; index < 10_000; index++) stats.add(index % 2 ? 1e12 : -1e12);
    expect(Number.isFinite(stats.variance)).toBe(true);
  });
});

describe('BatchQueue byte budgets', () => {
  const policy = { maxBatchSize: 64, maxQueueDelayMs: 0, maxQueueSize: 100 };
  let id = 0;
  const queued = (inputBytes: number, outputBytes = 0): QueuedRequest =>
    ({ id: ++id, rows: 1, shapeKey: 'k', enqueuedAtMs: 0, deadlineMs: undefined, inputBytes, outputBytes });

  it('refuses a request that would pass the queue byte budget, and takes it once room frees', () => {
    const queue = new BatchQueue(policy, { maxQueueBytes: 100 });
    expect(queue.enqueue(queued(60))).toBe(true);
    const big = queued(60);
    expect(queue.refusal(big)).toBe('bytes');
    expect(queue.enqueue(big)).toBe(false);
    expect(queue.nextBatch(1).kind).toBe('send');
    expect(queue.bytes).toBe(0);
    expect(queue.enqueue(big)).toBe(true);
  });

  it('cuts batches so neither inputs nor known outputs pass the batch byte budget', () => {
    const queue = new BatchQueue(policy, { maxBatchBytes: 100 });
    for (const bytes of [40, 40, 40]) queue.enqueue(queued(bytes));
    const first = queue.nextBatch(1);
    expect(first.kind === 'send' && first.requests.length).toBe(2);
    for (const bytes of [10, 10]) queue.enqueue(queued(bytes, 60));
    const second = queue.nextBatch(1);
    // 40 + 10 inputs fit, but 0 + 60 + 60 outputs do not.
    expect(second.kind === 'send' && second.requests.length).toBe(2);
    expect(queue.depth).toBe(1);
  });
});

describe('TaskStore byte budget', () => {
  it('refuses new tasks with RESOURCE_EXHAUSTED while held bytes exceed it', async () => {
    const never = () => new Promise<never>(() => {});
    const store = new TaskStore((_request, context) => {
      context.onAdmitted?.();
      context.onEnqueued?.({ standing: () => ({ position: 0, estimatedWaitMs: 0 }) });
      return never();
    }, { maxTaskBytes: 1000 });
    await store.submit(request(1, new Uint8Array(600)));
    expect(store.bytes).toBe(tensorBytesOf(request(1, new Uint8Array(600))));
    await expect(store.submit(request(1, new Uint8Array(600)))).rejects.toMatchObject({
      code: ErrorCode.RESOURCE_EXHAUSTED, message: expect.stringMatching(/task byte budget of 1000/),
    });
  });
});

describe('budget defaults', () => {
  it('fills in what the config leaves out', () => {
    expect(budgetsOf({ defaults: {} as never, models: {}, budgets: { maxRequestBytes: 5 } })).toEqual({ ...DEFAULT_ROUTER_BUDGETS, maxRequestBytes: 5 });
  });
});

describe('ModelStreamInfer flow control', () => {
  it('pauses while the client has unread answers or the stream runs its most requests', () => {
    expect(streamFlow(0, false, 4)).toBe('read');
    expect(streamFlow(3, false, 4)).toBe('read');
    expect(streamFlow(4, false, 4)).toBe('pause');
    expect(streamFlow(0, true, 4)).toBe('pause');
  });
});

describe('an executor that reports a model as not loaded', () => {
  it('recognises the refusal', () => {
    expect(isNotLoadedRefusal(ErrorCode.FAILED_PRECONDITION, 'model iris:1 is not loaded on this executor')).toBe(true);
    expect(isNotLoadedRefusal(ErrorCode.NOT_FOUND, 'iris:1 not loaded')).toBe(true);
    expect(isNotLoadedRefusal(ErrorCode.INVALID_ARGUMENT, 'not loaded')).toBe(false);
  });

  it('forgets the model on that link and fails the batch UNAVAILABLE, so it runs again after a reload', async () => {
    class Stream extends EventEmitter {
      readonly written: RouterMessage[] = [];
      write(message: RouterMessage) { this.written.push(message); return true; }
      end() {}
      cancel() {}
    }
    const stream = new Stream();
    const link = new ExecutorLink({ address: 'e:1', dialer: { connect: () => stream, close: () => {} }, logger: pino({ level: 'silent' }) });
    let capacityCalls = 0;
    link.onCapacity = () => { capacityCalls += 1; };
    link.start();
    stream.emit('data', { hello: { executorId: 'e', device: 'fake', maxInflightBatches: 2, loadedModels: [{ modelName: 'iris', version: 1 }] } } as unknown as ExecutorMessage);
    expect(link.loaded.has('iris:1' as never)).toBe(true);
    const outcome = link.execute({ modelName: 'iris', version: 1, deadlineUnixMs: 0, traceContext: {}, inputs: [] });
    const batchId = stream.written[0].executeBatch!.batchId;
    stream.emit('data', { batchResult: { batchId, errorCode: ErrorCode.FAILED_PRECONDITION, errorMessage: 'model iris:1 is not loaded on this executor', outputs: [] } } as unknown as ExecutorMessage);
    await expect(outcome).rejects.toMatchObject({ code: ErrorCode.UNAVAILABLE });
    expect(link.loaded.has('iris:1' as never)).toBe(false);
    expect(capacityCalls).toBeGreaterThan(1);
    link.close();
  });
});
