/**
 * Small tokenizers in Hugging Face's tokenizer.json format, built in the test: a byte-level BPE
 * as GPT-2's (every byte a token, a handful of merges) and a SentencePiece-style BPE with byte
 * fallback as Llama's (▁ for spaces, <0xNN> tokens for bytes outside the vocabulary).
 */

/** GPT-2's map from bytes to printable characters (bytes_to_unicode in its encoder.py). */
function bytesToUnicode(): Map<number, string> {
  const printable: number[] = [];
  for (let byte = 33; byte <= 126; byte++) printable.push(byte);
  for (let byte = 161; byte <= 172; byte++) printable.push(byte);
  for (let byte = 174; byte <= 255; byte++) printable.push(byte);
  const map = new Map<number, string>();
  for (const byte of printable) map.set(byte, String.fromCodePoint(byte));
  let shifted = 0;
  for (let byte = 0; byte < 256; byte++) {
    if (!map.has(byte)) map.set(byte, String.fromCodePoint(256 + shifted++));
  }
  return map;
}

const BYTE_CHARS = bytesToUnicode();

/** A handful of merges: 'Ġthe', 'é' as one token, 'TOP', 'hello', 'Ġworld'. */
const GPT2_STYLE_MERGES = ['Ġ t', 'h e', 'Ġt he', 'Ã ©', 'Ġ S', 'T O', 'TO P', 'l l', 'e ll', 'h ell', 'hell o', 'Ġ w', 'o r', 'Ġw or', 'Ġwor l', 'Ġworl d'];

/** Byte-level BPE: ids 0-255 are the bytes, then one id per merge, then <|endoftext|>. */
export function byteLevelTokenizer(merges: readonly string[] = GPT2_STYLE_MERGES) {
  const vocab: Record<string, number> = {};
  for (let byte = 0; byte < 256; byte++) vocab[BYTE_CHARS.get(byte)!] = byte;
  let next = 256;
  for (const merge of merges) vocab[merge.replace(' ', '')] = next++;
  const eosId = next;
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [{ id: eosId, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false,
      vocab, merges: [...merges],
    },
  };
  return { json: JSON.stringify(json), vocab, eosId };
}

/** The pieces of the SentencePiece-style vocabulary after <unk>, <s>, </s> and the 256 byte tokens. */
const LLAMA_PIECES = ['▁', 'H', 'e', 'l', 'o', 'w', 'r', 'd', 'P', 'a', 'i', 's', 'T', 'h', '▁H', '▁He', '▁Hel', '▁Hell', '▁Hello',
  '▁w', '▁wo', '▁wor', '▁worl', '▁world', '▁P', '▁Pa', '▁Par', '▁Pari', '▁Paris', '▁T', '▁Th', '▁The'];
const LLAMA_MERGES = ['▁ H', '▁H e', '▁He l', '▁Hel l', '▁Hell o', '▁ w', '▁w o', '▁wo r', '▁wor l', '▁worl d',
  '▁ P', '▁P a', '▁Pa r', '▁Par i', '▁Pari s', '▁ T', '▁T h', '▁Th e'];

/** SentencePiece-style BPE with byte fallback: <unk> 0, <s> 1, </s> 2, <0x00>..<0xFF> 3..258, then the pieces. */
export function llamaStyleTokenizer() {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let byte = 0; byte < 256; byte++) vocab[`<0x${byte.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + byte;
  LLAMA_PIECES.forEach((piece, index) => { vocab[piece] = 259 + index; });
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  const json = {
    version: '1.0', truncation: null, padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }, { type: 'Replace', pattern: { String: ' ' }, content: '▁' }] },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }, { type: 'Strip', content: ' ', start: 1, stop: 0 }],
    },
    model: {
      type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true,
      vocab, merges: LLAMA_MERGES,
    },
  };
  return { json: JSON.stringify(json), vocab };
}
