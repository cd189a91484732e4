/**
 * Stop strings, matched on the generated text as it grows. Pure.
 *
 * A stop string may span tokens and responses ("\n\nUser:" arriving as "\n", "\n", "User", ":"),
 * so text that could be the start of a stop string is held back until the next text decides it,
 * as vLLM does: released when it turns out not to be one, dropped when the stop string completes.
 * The text before the stop string is returned and the stop string itself is not (OpenAI's rule).
 */

export interface StopStep {
  /** Text safe to release now. */
  text: string;
  /** The stop string the text reached; nothing more is to be generated. */
  stop?: string;
}

export class StopStringMatcher {
  private readonly stops: readonly string[];
  /** Text received and not yet released: a possible start of a stop string. */
  private held = '';
  private stopped = false;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((stop) => stop.length > 0);
  }

  /** Adds text; returns what may be released, and the stop string once one is reached. */
  push(text: string): StopStep {
    if (this.stopped) return { text: '' };
    if (this.stops.length === 0) return { text };
    const pending = this.held + text;
    let earliest = -1;
    let matched = '';
    for (const stop of this.stops) {
      const at = pending.indexOf(stop);
      if (at >= 0 && (earliest < 0 || at < earliest)) {
        earliest = at;
        matched = stop;
      }
    }
    if (earliest >= 0) {
      this.stopped = true;
      this.held = '';
      return { text: pending.slice(0, earliest), stop: matched };
    }
    const keep = this.possibleStartLength(pending);
    this.held = pending.slice(pending.length - keep);
    return { text: pending.slice(0, pending.length - keep) };
  }

  /** The text held back, once generation ended without reaching a stop string. */
  flush(): string {
    const rest = this.held;
    this.held = '';
    return rest;
  }

  /** The length of the longest end of `text` that is the beginning of some stop string. */
  private possibleStartLength(text: string): number {
    let longest = 0;
    for (const stop of this.stops) {
      for (let length = Math.min(stop.length - 1, text.length); length > longest; length--) {
        if (text.endsWith(stop.slice(0, length))) {
          longest = length;
          break;
        }
      }
    }
    return longest;
  }
}
