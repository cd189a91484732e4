/** What a gRPC call tells the request path: its deadline and its cancellation. */
import type { ServerUnaryCall } from '@grpc/grpc-js';
import type { CancelSignal } from '../batching/index.ts';

/**
 * The cancellation of one unary call: it fires when the client cancels or the call ends early.
 *
 * grpc-js emits 'cancelled' for every call once its stream closes, answered or not. By then an
 * answered request has left the queue and taken its listener with it, so the event costs
 * nothing; an AbortController would build an AbortError (with its stack trace) and dispatch an
 * event for every request served.
 */
class CallCancellation implements CancelSignal {
  aborted = false;
  private listeners: Array<() => void> = [];

  constructor(call: ServerUnaryCall<unknown, unknown>) {
    call.once('cancelled', () => this.abort());
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (!this.aborted) this.listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const index = this.listeners.indexOf(listener);
    if (index >= 0) this.listeners.splice(index, 1);
  }

  private abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    for (const listener of this.listeners.splice(0)) listener();
  }
}

/** A cancellation signal that fires when the unary call is cancelled. */
export function cancellationOf(call: ServerUnaryCall<unknown, unknown>): CancelSignal {
  return new CallCancellation(call);
}

/** The call's deadline in Unix milliseconds, or undefined when the client set none. */
export function deadlineOf(call: { getDeadline(): Date | number }): number | undefined {
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? ms : undefined;
}
