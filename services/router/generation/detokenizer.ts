/**
 * Turns generated token ids into text one token at a time, releasing only complete characters.
 * Pure.
 *
 * A token is not a character: byte-level BPE (GPT-2) splits an emoji into up to four tokens of one
 * byte each, and SentencePiece models with byte fallback (Llama) spell bytes as <0xE2> tokens.
 * Decoding an unfinished byte sequence yields U+FFFD, so the text is released only when the
 * decoding of the new tokens no longer ends with it. Decoders also depend on context (Llama's
 * decoder strips the leading space of a text, so "▁Paris" alone is "Paris" but " Paris" after
 * other tokens), so each step decodes a short window of earlier tokens with the new ones and
 * releases what the new ones add to the window's text, as Hugging Face's text-generation-inference
 * and vLLM do. The window starts inside the prompt, so the first generated word keeps its space.
 */

/** Prompt tokens decoded before the first generated one, for context. */
const INITIAL_CONTEXT_TOKENS = 5;
const REPLACEMENT_CHARACTER = '\uFFFD';

/** How the detokenizer decodes a run of tokens (the model's tokenizer, special tokens skipped). */
export type DecodeTokens = (ids: readonly number[]) => string;

export class IncrementalDetokenizer {
  private readonly decode: DecodeTokens;
  private readonly ids: number[];
  /** Where the window of context starts. */
  private prefixOffset: number;
  /** Where the tokens whose text is not yet released start. */
  private readOffset: number;

  /** `promptIds`: the prompt, whose last few tokens are the first window's context. */
  constructor(decode: DecodeTokens, promptIds: readonly number[]) {
    this.decode = decode;
    this.ids = promptIds.slice(-INITIAL_CONTEXT_TOKENS);
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
  }

  /** Adds one generated token; returns the text it completes ('' while a character is unfinished). */
  push(id: number): string {
    this.ids.push(id);
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const text = this.decode(this.ids.slice(this.prefixOffset));
    if (text.length <= prefix.length || text.endsWith(REPLACEMENT_CHARACTER)) return '';
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return text.slice(prefix.length);
  }

  /**
   * The text of tokens still held, once no more will come: an unfinished character at the very
   * end decodes to U+FFFD, as the model left it.
   */
  flush(): string {
    if (this.readOffset === this.ids.length) return '';
    const prefix = this.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const text = this.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return text.length > prefix.length ? text.slice(prefix.length) : '';
  }
}
