/**
 * A stand-in executor for text generation over real gRPC: it serves nexus.executor.v1.Executor,
 * answers LoadModel with task "text-generation" and the KV capacity it is given, and streams a
 * deterministic SequenceEvent per step for each StartSequence (the tokens `tokensFor` picks, one
 * every `stepMs`), ending "eos" at a stop token id, "length" at max_new_tokens, and "cancelled"
 * at once when the router sends CancelSequence. It records what the router sent, in order.
 */
import { Server, ServerCredentials, status, type ServerDuplexStream } from '@grpc/grpc-js';
import {
  ExecutorService, type ExecutorMessage, type RouterMessage, type SequenceEvent, type StartSequence,
} from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';

export interface FakeExecutorOptions {
  kvCapacityTokens?: number;
  maxSequenceTokens?: number;
  /** The tokens a sequence generates, in order (it stops sooner at max_new_tokens or a stop token). */
  tokensFor: (start: StartSequence) => number[];
  /** Milliseconds between steps. Default 2. */
  stepMs?: number;
  /** Answer LoadModel as a tensor model (task ''). */
  tensorTask?: boolean;
  /** Sequences for which it sends one token and then nothing, as a hung executor would. */
  stalls?: (start: StartSequence) => boolean;
}

/** What the fake saw, in arrival order. */
export type Seen =
  | { kind: 'start'; start: StartSequence; atMs: number }
  | { kind: 'cancel'; sequenceId: number; atMs: number }
  | { kind: 'end'; sequenceId: number; finishReason: string; atMs: number };

export interface FakeExecutor {
  address: string;
  seen: Seen[];
  starts(): StartSequence[];
  cancels(): number[];
  /** Sequences running now. */
  running(): number;
  /** Ends the router's stream at once, as a crashed executor would. */
  dropStreams(): void;
  stop(): Promise<void>;
}

const event = (sequenceId: number, partial: Partial<SequenceEvent>): SequenceEvent => ({
  sequenceId, tokens: [], finishReason: '', errorCode: 0, errorMessage: '', promptTokens: 0, generatedTokens: 0, firstTokenNs: 0, preemptions: 0, ...partial,
});

export async function startFakeExecutor(options: FakeExecutorOptions): Promise<FakeExecutor> {
  const seen: Seen[] = [];
  const timers = new Map<number, NodeJS.Timeout>();
  const streams = new Set<ServerDuplexStream<RouterMessage, ExecutorMessage>>();
  const stepMs = options.stepMs ?? 2;

  const run = (stream: ServerDuplexStream<RouterMessage, ExecutorMessage>, start: StartSequence) => {
    const planned = options.tokensFor(start);
    let generated = 0;
    const startedNs = process.hrtime.bigint();
    const finish = (finishReason: string, extra: Partial<SequenceEvent> = {}) => {
      clearInterval(timers.get(start.sequenceId));
      timers.delete(start.sequenceId);
      seen.push({ kind: 'end', sequenceId: start.sequenceId, finishReason, atMs: performance.now() });
      stream.write({ sequenceEvent: event(start.sequenceId, { finishReason, promptTokens: start.promptTokenIds.length, generatedTokens: generated, ...extra }) });
    };
    const step = () => {
      if (start.deadlineUnixMs > 0 && Date.now() > start.deadlineUnixMs) {
        finish('error', { errorCode: 4, errorMessage: 'the sequence passed its deadline' });
        return;
      }
      const tokenId = planned[generated];
      if (tokenId === undefined) {
        finish('length');
        return;
      }
      if (generated === 1 && options.stalls?.(start)) return;
      generated += 1;
      const tokens = [{ tokenId, logprob: start.logprobs ? -generated / 10 : 0, topLogprobs: start.logprobs ? [{ tokenId, logprob: -generated / 10 }].slice(0, start.topLogprobs) : [] }];
      const ends = start.stopTokenIds.includes(tokenId) ? 'eos' : generated >= start.maxNewTokens ? 'length' : '';
      const firstTokenNs = generated === 1 ? Number(process.hrtime.bigint() - startedNs) : 0;
      if (ends === '') {
        stream.write({ sequenceEvent: event(start.sequenceId, { tokens, firstTokenNs }) });
        return;
      }
      clearInterval(timers.get(start.sequenceId));
      timers.delete(start.sequenceId);
      seen.push({ kind: 'end', sequenceId: start.sequenceId, finishReason: ends, atMs: performance.now() });
      stream.write({ sequenceEvent: event(start.sequenceId, {
        tokens, firstTokenNs, finishReason: ends, promptTokens: start.promptTokenIds.length, generatedTokens: generated,
      }) });
    };
    timers.set(start.sequenceId, setInterval(step, stepMs));
  };

  const server = new Server();
  server.addService(ExecutorService, {
    connect(stream: ServerDuplexStream<RouterMessage, ExecutorMessage>) {
      streams.add(stream);
      stream.write({ hello: { executorId: 'fake', device: 'fake device', maxInflightBatches: 4, loadedModels: [] } });
      stream.on('data', (message: RouterMessage) => {
        if (message.loadModel) {
          const { requestId, version } = message.loadModel;
          stream.write({ modelLoadResult: {
            requestId, errorCode: 0, errorMessage: '', loadNs: 1,
            model: {
              modelName: version!.modelName, version: version!.version, sha256: version!.sha256, precision: 'fp32', stepCount: 0, weightBytes: 0,
              task: options.tensorTask ? '' : 'text-generation', kvCapacityTokens: options.kvCapacityTokens ?? 4096,
              maxSequenceTokens: options.maxSequenceTokens ?? 1024, kvBytesPerToken: 64,
            },
          } });
        } else if (message.startSequence) {
          seen.push({ kind: 'start', start: message.startSequence, atMs: performance.now() });
          run(stream, message.startSequence);
        } else if (message.cancelSequence) {
          const { sequenceId } = message.cancelSequence;
          seen.push({ kind: 'cancel', sequenceId, atMs: performance.now() });
          if (!timers.has(sequenceId)) return;
          clearInterval(timers.get(sequenceId));
          timers.delete(sequenceId);
          seen.push({ kind: 'end', sequenceId, finishReason: 'cancelled', atMs: performance.now() });
          stream.write({ sequenceEvent: event(sequenceId, { finishReason: 'cancelled' }) });
        }
      });
      const forget = () => {
        streams.delete(stream);
        for (const timer of timers.values()) clearInterval(timer);
        timers.clear();
      };
      stream.on('end', () => {
        forget();
        stream.end();
      });
      stream.on('error', forget);
      stream.on('cancelled', forget);
    },
    getStats(_call: unknown, callback: (error: null, response: object) => void) {
      callback(null, { batchesBySize: {}, requestsFailed: 0, models: [], pipelinesBuilt: 0, residentModels: 0, gpuBytesUsed: 0 });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))));
  return {
    address: `127.0.0.1:${port}`,
    seen,
    starts: () => seen.flatMap((entry) => (entry.kind === 'start' ? [entry.start] : [])),
    cancels: () => seen.flatMap((entry) => (entry.kind === 'cancel' ? [entry.sequenceId] : [])),
    running: () => timers.size,
    dropStreams() {
      for (const stream of streams) stream.emit('error', { code: status.UNAVAILABLE, details: 'executor crashed' });
    },
    stop: () => new Promise((resolve) => {
      for (const timer of timers.values()) clearInterval(timer);
      server.tryShutdown(() => resolve());
      setTimeout(() => server.forceShutdown(), 500).unref();
    }),
  };
}
