/**
 * Server-sent events for the streaming routes (generate_stream, OpenAI's stream: true). The
 * stream opens with its first event, so a request refused before anything was generated (a bad
 * field, an unknown model, a rate limit) still gets its HTTP status and error body; an error
 * after that is one more event, then the end.
 */
import { PassThrough } from 'node:stream';
import type { FastifyReply } from 'fastify';

export class EventStream {
  private readonly reply: FastifyReply;
  private stream: PassThrough | undefined;

  constructor(reply: FastifyReply) {
    this.reply = reply;
  }

  /** True once the first event went out (the status and headers are sent). */
  get started(): boolean {
    return this.stream !== undefined;
  }

  /** Sends one `data:` event: an object as JSON, or a string as it is (OpenAI's `[DONE]`). */
  send(data: unknown): void {
    if (!this.stream) {
      this.stream = new PassThrough();
      // no-transform: a proxy must not buffer or compress the events; X-Accel-Buffering: nginx's switch for it.
      this.reply.code(200).type('text/event-stream; charset=utf-8')
        .headers({ 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' }).send(this.stream);
    }
    if (this.stream.writableEnded) return;
    this.stream.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
  }

  /** Ends the stream (nothing more is sent). */
  end(): void {
    if (this.stream && !this.stream.writableEnded) this.stream.end();
  }
}
