/**
 * One sequence's output as the client sees it: the executor's token ids become text through the
 * incremental detokenizer, the text passes the stop-string matcher, and each step says which
 * tokens it carried and what text it releases. Pure.
 */
import type { GeneratedToken } from '../../protocol/generated/nexus/executor/v1/executor.ts';
import { IncrementalDetokenizer } from './detokenizer.ts';
import { StopStringMatcher } from './stop-strings.ts';

/** How the output decodes tokens (TextTokenizer is one). */
export interface TokenDecoder {
  decode(ids: readonly number[], skipSpecialTokens?: boolean): string;
}

export interface OutputToken {
  id: number;
  /** The token decoded alone, special tokens included. */
  text: string;
  logprob: number;
  topLogprobs: Array<{ id: number; text: string; logprob: number }>;
}

export interface OutputStep {
  tokens: OutputToken[];
  /** Text released by this step. */
  text: string;
  /** The stop string reached: the sequence is over, and its later tokens are not part of the output. */
  stop?: string;
}

export class SequenceOutput {
  private readonly tokenizer: TokenDecoder;
  private readonly detokenizer: IncrementalDetokenizer;
  private readonly stops: StopStringMatcher;
  private generatedCount = 0;
  private stopString: string | undefined;

  constructor(tokenizer: TokenDecoder, promptIds: readonly number[], stops: readonly string[]) {
    this.tokenizer = tokenizer;
    this.detokenizer = new IncrementalDetokenizer((ids) => tokenizer.decode(ids, true), promptIds);
    this.stops = new StopStringMatcher(stops);
  }

  /** Tokens that belong to the output so far (up to the one that completed a stop string). */
  get generated(): number {
    return this.generatedCount;
  }

  get stopped(): boolean {
    return this.stopString !== undefined;
  }

  /** Adds one event's tokens. Once a stop string is reached, further tokens are ignored. */
  accept(generated: readonly GeneratedToken[]): OutputStep {
    const step: OutputStep = { tokens: [], text: '' };
    for (const token of generated) {
      if (this.stopString !== undefined) break;
      this.generatedCount += 1;
      step.tokens.push({
        id: token.tokenId,
        text: this.tokenizer.decode([token.tokenId], false),
        logprob: token.logprob,
        topLogprobs: token.topLogprobs.map((top) => ({ id: top.tokenId, text: this.tokenizer.decode([top.tokenId], false), logprob: top.logprob })),
      });
      const matched = this.stops.push(this.detokenizer.push(token.tokenId));
      step.text += matched.text;
      if (matched.stop !== undefined) {
        this.stopString = matched.stop;
        step.stop = matched.stop;
      }
    }
    return step;
  }

  /**
   * The text still held once the sequence ended without reaching a stop string: an unfinished
   * character, and text that could have begun a stop string. It can still complete one, as the
   * detokenizer's last characters arrive.
   */
  finish(): { text: string; stop?: string } {
    if (this.stopString !== undefined) return { text: '' };
    const last = this.stops.push(this.detokenizer.flush());
    if (last.stop !== undefined) {
      this.stopString = last.stop;
      return last;
    }
    return { text: last.text + this.stops.flush() };
  }
}
