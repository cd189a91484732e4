/**
 * Shared by the text-generation tests on the GPU: loading a checkpoint built in code, running a
 * sequence to its end and collecting its events, and the fp32 tolerance for logits.
 */
import { expect } from 'vitest';
import type { GpuContext } from '../../../services/executor/gpu/index.ts';
import { loadTextGenerationModel, type TextGenerationModel } from '../../../services/executor/llm/index.ts';
import type { TextGenerationLoadOptions } from '../../../services/executor/llm/load-model.ts';
import type { SequenceEvent, StartSequence } from '../../../services/protocol/generated/nexus/executor/v1/executor.ts';
import { memoryFiles, type Checkpoint } from './checkpoints.ts';

export function loadCheckpoint(gpu: GpuContext, checkpoint: Checkpoint, options: Partial<TextGenerationLoadOptions> = {}): Promise<TextGenerationModel> {
  return loadTextGenerationModel(gpu, memoryFiles(checkpoint.files), { precision: 'fp32', kvBudgetBytes: 8 * 1024 * 1024, ...options });
}

let nextSequenceId = 1;

/** A StartSequence with defaults (greedy, priority 2, no deadline). */
export function startRequest(prompt: readonly number[], maxNewTokens: number, overrides: Partial<StartSequence> = {}): StartSequence {
  return {
    sequenceId: nextSequenceId++, modelName: 'm', version: 1, promptTokenIds: [...prompt], maxNewTokens,
    sampling: undefined, stopTokenIds: [], logprobs: false, topLogprobs: 0, deadlineUnixMs: 0, priority: 0, traceContext: {}, ...overrides,
  };
}

export interface Finished {
  tokens: number[];
  events: SequenceEvent[];
  last: SequenceEvent;
}

/** Starts a sequence on `model` and resolves with its tokens and events once it has ended. */
export function runSequence(model: TextGenerationModel, request: StartSequence): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const events: SequenceEvent[] = [];
    try {
      model.start(request, (event) => {
        events.push(event);
        if (event.finishReason) resolve({ tokens: events.flatMap((each) => each.tokens.map((token) => token.tokenId)), events, last: event });
      });
    } catch (error) {
      reject(error);
    }
  });
}

/**
 * FP32 logits against the float64 reference: |ours - reference| <= 1e-3 * max(|reference|, 1)
 * elementwise. Every weight and activation is rounded to f32 and sums run in a different order,
 * a few 1e-6 relative per layer; 1e-3 leaves room for a few layers and still catches a wrong
 * rotation, norm or mask (errors of order 1e-1).
 */
export function expectLogitsClose(label: string, ours: Float32Array, reference: Float64Array): void {
  expect(ours.length, `${label}: logits length`).toBe(reference.length);
  let worst = 0;
  let worstIndex = 0;
  for (let i = 0; i < reference.length; i++) {
    const error = Math.abs(ours[i] - reference[i]) / Math.max(Math.abs(reference[i]), 1);
    if (!(error <= worst)) {
      worst = error;
      worstIndex = i;
    }
  }
  expect(worst, `${label}: worst relative error at token ${worstIndex} (ours ${ours[worstIndex]}, reference ${reference[worstIndex]})`).toBeLessThanOrEqual(1e-3);
}
