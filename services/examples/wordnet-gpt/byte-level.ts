/**
 * GPT-2's byte-level alphabet and pre-tokenization, as the Hugging Face `ByteLevel` pre-tokenizer
 * and decoder define them: every UTF-8 byte maps to one printable character (so any text, in any
 * script, has a spelling in the 256-symbol base vocabulary), and text is first split into words
 * by GPT-2's regex so that merges never cross a word boundary.
 */

/**
 * GPT-2's `bytes_to_unicode`, as two columns: base token id i is the byte `BASE_TOKEN_BYTES[i]`,
 * spelled `BYTE_SYMBOLS[i]`. Printable Latin-1 bytes are spelled as themselves and come first
 * (GPT-2 numbers them so: '!' is 0); the other 68 bytes follow in byte order, spelled from U+0100
 * on (the space is 'Ġ', id 220).
 */
const { BYTE_SYMBOLS, BASE_TOKEN_BYTES } = (() => {
  const bytes: number[] = [];
  for (let code = 0x21; code <= 0x7e; code++) bytes.push(code);
  for (let code = 0xa1; code <= 0xac; code++) bytes.push(code);
  for (let code = 0xae; code <= 0xff; code++) bytes.push(code);
  const codePoints = [...bytes];
  const printable = new Set(bytes);
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    if (printable.has(byte)) continue;
    bytes.push(byte);
    codePoints.push(256 + shifted++);
  }
  return { BYTE_SYMBOLS: codePoints.map((codePoint) => String.fromCodePoint(codePoint)), BASE_TOKEN_BYTES: bytes };
})();
export { BYTE_SYMBOLS };

/** Base token id of each byte value: `BYTE_TO_BASE_ID[byte]`. */
export const BYTE_TO_BASE_ID: Uint16Array = (() => {
  const table = new Uint16Array(256);
  BASE_TOKEN_BYTES.forEach((byte, id) => (table[byte] = id));
  return table;
})();

/** Byte value of each byte-level symbol character, for decoding token strings back to UTF-8. */
const SYMBOL_TO_BYTE = new Map<string, number>(BYTE_SYMBOLS.map((symbol, id) => [symbol, BASE_TOKEN_BYTES[id]]));

/**
 * GPT-2's pre-tokenization regex, the one `ByteLevel` with `use_regex: true` applies: English
 * contractions, runs of letters, of digits or of other symbols (each with at most one leading
 * space), and whitespace.
 */
const GPT2_PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** Splits text into GPT-2's pre-tokens (words with their leading space), in order. */
export function preTokenize(text: string): string[] {
  return text.match(GPT2_PRETOKENIZE) ?? [];
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

/** The UTF-8 bytes of a pre-token as base token ids. */
export function baseTokenIds(word: string): number[] {
  return Array.from(utf8.encode(word), (byte) => BYTE_TO_BASE_ID[byte]);
}

/** A byte-level token string (e.g. "Ġdog") back to its UTF-8 bytes. */
export function symbolBytes(token: string): number[] {
  return Array.from(token, (symbol) => {
    const byte = SYMBOL_TO_BYTE.get(symbol);
    if (byte === undefined) throw new RangeError(`"${symbol}" is not a byte-level symbol (token "${token}")`);
    return byte;
  });
}

/** Concatenated token strings back to text; invalid UTF-8 (a cut character) decodes to U+FFFD. */
export function decodeSymbols(tokens: readonly string[]): string {
  return utf8Decoder.decode(Uint8Array.from(tokens.flatMap(symbolBytes)));
}
