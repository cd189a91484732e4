/**
 * Compiling an untrusted model first in a worker thread with a bounded heap, so a model that
 * makes the compiler run away kills only that worker: decoding, checking, shape inference,
 * constant folding and planning (everything `compileGraph` does, no GPU) run there as a check,
 * and only when they succeed does the serving thread compile the model itself, now known to
 * fit its budgets. One worker per load, never per batch.
 *
 * A model with external data is checked from its directory: the worker gets the .onnx bytes
 * (small: its weights are outside it) and the directory's path, and reads the weight files
 * itself, confined to the directory as the serving thread's compile is. Nothing of the weights
 * is copied to the worker or re-encoded, so protobuf's 2 GiB limit does not apply to them. The
 * worker's weights are ArrayBuffers outside its V8 heap; it is terminated (its memory freed)
 * before the check settles, so the serving thread's compile never overlaps it.
 *
 * This module is also the worker's entry point: started with its marker in `workerData`, it
 * runs the check and posts the outcome.
 */
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { decodeModel } from '../../onnx/model.ts';
import { ErrorCode, failedPrecondition, NexusError } from '../../domain/errors.ts';
import { BUDGET_ENV, compileGraph, type CompileBudgets } from '../compiler/index.ts';
import { checkDeclaredSizes } from '../compiler/compile-budgets.ts';
import { directoryExternalData, resolveExternalData } from '../compiler/external-data.ts';
import type { GemmAlgorithm } from '../kernels/index.ts';
import type { Precision } from '../tensor/index.ts';

const WORKER_MARKER = 'nexus-compile-check';

/** What the worker compiles: the model's bytes (copied to it) and the compile's settings. */
interface CompileCheckRequest {
  readonly bytes: Uint8Array;
  /** The directory the model's external data files are read from (compiler/external-data.ts). */
  readonly modelDirectory?: string;
  readonly precision: Precision;
  readonly gemmAlgorithm: GemmAlgorithm;
  readonly budgets: CompileBudgets;
}

/** What the worker found: how big the compiled model is, or the coded error that refused it. */
type CompileCheckOutcome =
  | { readonly ok: true; readonly steps: number; readonly constants: number }
  | { readonly ok: false; readonly code: ErrorCode; readonly message: string };

/**
 * Compiles the model's graph in a worker whose V8 heap is budgets.compileHeapMb and whose time
 * is budgets.compileTimeoutMs. Resolves when the compile succeeded there; rejects with the
 * compile's own coded error, or FAILED_PRECONDITION when the worker ran out of heap, ran out
 * of time or died (the model is refused; the serving thread never compiles it).
 */
export function checkCompileInWorker(request: CompileCheckRequest): Promise<void> {
  const { compileHeapMb, compileTimeoutMs } = request.budgets;
  return new Promise((resolve, reject) => {
    let settled = false;
    const worker = new Worker(new URL(import.meta.url), {
      workerData: { marker: WORKER_MARKER, request },
      resourceLimits: { maxOldGenerationSizeMb: compileHeapMb },
    });
    const settle = (error: NexusError | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // Settles once the worker is gone, so its copy of the weights is freed before the serving thread compiles.
      const done = () => (error ? reject(error) : resolve());
      worker.terminate().then(done, done);
    };
    const timer = setTimeout(() => settle(failedPrecondition(
      `model compile took longer than its ${compileTimeoutMs} ms (compileTimeoutMs, ${BUDGET_ENV.compileTimeoutMs}); the model is refused`,
    )), compileTimeoutMs);
    worker.once('message', (outcome: CompileCheckOutcome) => {
      settle(outcome.ok ? undefined : new NexusError(outcome.code, outcome.message));
    });
    worker.once('error', (error: Error & { code?: string }) => {
      settle(error.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? failedPrecondition(`model compile ran out of its ${compileHeapMb} MiB heap (compileHeapMb, ${BUDGET_ENV.compileHeapMb}); the model is refused`)
        : failedPrecondition(`model compile failed in its worker: ${error.message}`));
    });
    worker.once('exit', (exitCode) => settle(failedPrecondition(`model compile worker exited with code ${exitCode} before it finished`)));
  });
}

/** The worker's side: compile, then post the outcome (a coded error for anything thrown). */
function runCompileCheck(request: CompileCheckRequest): CompileCheckOutcome {
  try {
    const model = decodeModel(request.bytes);
    if (request.modelDirectory !== undefined) {
      checkDeclaredSizes(model, request.budgets);
      resolveExternalData(model, directoryExternalData(request.modelDirectory));
    }
    const graph = compileGraph(model, {
      precision: request.precision, traits: { gemmAlgorithm: request.gemmAlgorithm }, budgets: request.budgets,
    });
    return { ok: true, steps: graph.steps.length, constants: graph.constants.size };
  } catch (error) {
    const coded = NexusError.from(error);
    return { ok: false, code: coded.code, message: coded.message };
  }
}

const started = workerData as { marker?: string; request?: CompileCheckRequest } | null;
if (!isMainThread && started?.marker === WORKER_MARKER && started.request) {
  parentPort!.postMessage(runCompileCheck(started.request));
}
