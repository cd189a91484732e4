/**
 * Incremental detokenization through real tokenizers: text is released a whole character at a
 * time (never half an emoji, never a byte-fallback byte on its own), and the pieces add up to
 * the text the whole sequence decodes to, spaces included.
 */
import { describe, expect, it } from 'vitest';
import { IncrementalDetokenizer } from '../../../services/router/generation/detokenizer.ts';
import { TextTokenizer } from '../../../services/router/generation/text-tokenizer.ts';
import { byteLevelTokenizer, llamaStyleTokenizer } from './tokenizer-fixtures.ts';

const gpt2 = TextTokenizer.fromFiles({ tokenizerJson: byteLevelTokenizer().json });
const llama = TextTokenizer.fromFiles({ tokenizerJson: llamaStyleTokenizer().json });

/** What the detokenizer releases for each of `ids`, after `promptIds`, and at the end. */
function releases(tokenizer: TextTokenizer, promptIds: number[], ids: number[]) {
  const detokenizer = new IncrementalDetokenizer((window) => tokenizer.decode(window), promptIds);
  const pieces = ids.map((id) => detokenizer.push(id));
  return { pieces, tail: detokenizer.flush() };
}

/** True when the text survives UTF-8 unchanged: no lone surrogate, i.e. no half of a character. */
const wholeCharacters = (text: string) => Buffer.from(text, 'utf8').toString('utf8') === text && !text.includes('\uFFFD');

describe('IncrementalDetokenizer with a byte-level BPE (GPT-2)', () => {
  it('holds the bytes of an emoji until its last one arrives, then releases it whole', () => {
    const ids = gpt2.encode(' hi 😀!');
    // The emoji is four tokens of one byte each.
    expect(ids.slice(-5, -1)).toEqual([0xf0, 0x9f, 0x98, 0x80]);
    const { pieces, tail } = releases(gpt2, gpt2.encode('Say'), ids);
    expect(pieces.slice(-6)).toEqual([' ', '', '', '', '😀', '!']);
    expect(tail).toBe('');
    expect(pieces.join('')).toBe(' hi 😀!');
    expect(pieces.every(wholeCharacters)).toBe(true);
  });

  it('releases two-byte characters whole, merged or not', () => {
    const text = ' café, ñandú — 日本';
    const { pieces } = releases(gpt2, gpt2.encode('x'), gpt2.encode(text));
    expect(pieces.join('')).toBe(text);
    expect(pieces.every(wholeCharacters)).toBe(true);
    // 日 is three tokens: two of them release nothing.
    expect(pieces.filter((piece) => piece === '').length).toBeGreaterThanOrEqual(4);
  });

  it('gives the model\'s unfinished character as U+FFFD only when the sequence ends inside it', () => {
    const { pieces, tail } = releases(gpt2, gpt2.encode('x'), [0x20, 0xf0, 0x9f]);
    expect(pieces).toEqual([' ', '', '']);
    expect(tail).toBe('\uFFFD');
  });
});

describe('IncrementalDetokenizer with SentencePiece byte fallback (Llama)', () => {
  const id = (piece: string) => llamaStyleTokenizer().vocab[piece];

  it('keeps the space of the first generated word, which the decoder strips from a text\'s start', () => {
    const prompt = llama.encode('The');
    expect(llama.decode([id('▁Paris')])).toBe('Paris');
    const { pieces } = releases(llama, prompt, [id('▁Paris'), id('▁Hello')]);
    expect(pieces).toEqual([' Paris', ' Hello']);
  });

  it('puts <0xE2><0x82><0xAC> together into € and releases nothing before', () => {
    const ids = llama.encode('Paris €', false);
    expect(ids.map((token) => llama.tokenString(token))).toEqual(['▁Paris', '▁', '<0xE2>', '<0x82>', '<0xAC>']);
    const { pieces, tail } = releases(llama, llama.encode('The'), ids);
    expect(pieces).toEqual([' Paris', ' ', '', '', '€']);
    expect(tail).toBe('');
  });

  it('decodes an emoji of four byte tokens once, whole', () => {
    const ids = llama.encode('Hello 🦙', false);
    const { pieces } = releases(llama, [1], ids);
    expect(pieces.join('')).toBe('Hello 🦙');
    expect(pieces.filter((piece) => piece.includes('🦙'))).toEqual(['🦙']);
    expect(pieces.every(wholeCharacters)).toBe(true);
  });
});
