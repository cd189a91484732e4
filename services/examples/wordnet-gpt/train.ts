/**
 * Trains the example language model: a byte-level BPE tokenizer and a small GPT-2 on WordNet's
 * glosses, both learned here in plain TypeScript on the CPU, exported as a Hugging Face GPT-2
 * checkpoint directory. Seeded: the same options give the same files.
 *
 *   node services/examples/wordnet-gpt/train.ts [--steps N] [--out DIR]
 *
 * Each document is "lemma: gloss" followed by <|endoftext|>; a training row is 128 tokens that
 * start at a document's beginning (so a prompt at position 0, "dog:", looks like training data)
 * and run on through the next documents of a seeded shuffle.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mulberry32 } from '../iris/train.ts';
import { AdamW, cosineLearningRate } from './adamw.ts';
import { BpeEncoder, countWords, trainBpe } from './bpe.ts';
import { writeCheckpoint, type Checkpoint } from './checkpoint.ts';
import { readWordNetDocuments } from './corpus.ts';
import { generateText } from './generate.ts';
import { Gpt2Model } from './gpt2.ts';
import { initialParameters, parameterCount, tensorLayout, type Gpt2Config } from './weights.ts';

export interface WordNetGptOptions {
  seed: number;
  steps: number;
  /** Rows per optimizer step. */
  batchSize: number;
  /** Tokens per row; at most `model.n_positions`. */
  sequenceLength: number;
  peakLearningRate: number;
  warmupSteps: number;
  /** Validation loss is measured every this many steps (and at the end). */
  evaluateEvery: number;
  vocabularySize: number;
  model: Omit<Gpt2Config, 'vocab_size'>;
  /** Fraction of the documents held out for validation. */
  validationFraction: number;
  /** Train on only the first N shuffled documents (tests); all when undefined. */
  documentLimit?: number;
  log: (line: string) => void;
}

/** The settings the committed checkpoint was trained with (`--steps` aside, which the CLI may change). */
export const DEFAULT_OPTIONS: WordNetGptOptions = {
  seed: 1234,
  steps: 1500,
  batchSize: 4,
  sequenceLength: 128,
  peakLearningRate: 2e-3,
  warmupSteps: 100,
  evaluateEvery: 100,
  vocabularySize: 2048,
  model: { n_positions: 128, n_embd: 128, n_layer: 2, n_head: 4, layer_norm_epsilon: 1e-5 },
  validationFraction: 0.02,
  log: (line) => console.log(line),
};

/** Documents tokenized and concatenated, each followed by <|endoftext|>, with where each starts. */
interface TokenStream {
  tokens: Int32Array;
  documentStarts: Int32Array;
}

function tokenStream(encoder: BpeEncoder, documents: readonly string[], endOfTextId: number): TokenStream {
  const tokens: number[] = [];
  const documentStarts: number[] = [];
  for (const document of documents) {
    documentStarts.push(tokens.length);
    for (const id of encoder.encode(document)) tokens.push(id);
    tokens.push(endOfTextId);
  }
  return { tokens: Int32Array.from(tokens), documentStarts: Int32Array.from(documentStarts) };
}

/** Fills `inputs` and `targets` ([rows, length]) with rows starting at random document starts. */
function sampleRows(stream: TokenStream, random: () => number, inputs: Int32Array, targets: Int32Array, rows: number, length: number): void {
  // Rows start only where a whole row (and its last target) still fits.
  const lastStart = stream.tokens.length - length - 1;
  let usableDocuments = stream.documentStarts.length;
  while (usableDocuments > 1 && stream.documentStarts[usableDocuments - 1] > lastStart) usableDocuments--;
  for (let row = 0; row < rows; row++) {
    const start = stream.documentStarts[Math.floor(random() * usableDocuments)];
    for (let t = 0; t < length; t++) {
      inputs[row * length + t] = stream.tokens[start + t];
      targets[row * length + t] = stream.tokens[start + t + 1];
    }
  }
}

function shuffled<T>(items: readonly T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** A fixed set of rows and the model's mean loss on them. */
function fixedRows(stream: TokenStream, seed: number, rows: number, length: number) {
  const inputs = new Int32Array(rows * length);
  const targets = new Int32Array(rows * length);
  sampleRows(stream, mulberry32(seed), inputs, targets, rows, length);
  return (model: Gpt2Model, batchSize: number): number => {
    let sum = 0;
    for (let row = 0; row < rows; row += batchSize) {
      const count = Math.min(batchSize, rows - row);
      const slice = [row * length, (row + count) * length] as const;
      sum += model.loss(inputs.subarray(...slice), targets.subarray(...slice), count, length) * count;
    }
    return sum / rows;
  };
}

export interface TrainedWordNetGpt {
  checkpoint: Checkpoint;
  model: Gpt2Model;
  encoder: BpeEncoder;
  /** Mean loss (nats per token) of the final model on a fixed sample of training rows. */
  trainLoss: number;
  /** Mean loss on held-out documents' rows. */
  validationLoss: number;
  /** The validation loss every `evaluateEvery` steps: [step, loss]. */
  validationHistory: Array<[number, number]>;
  tokensSeen: number;
  trainingTokens: number;
}

export function trainWordNetGpt(options: WordNetGptOptions): TrainedWordNetGpt {
  const { seed, steps, batchSize, sequenceLength: length, log } = options;
  const started = performance.now();
  const elapsed = () => `${((performance.now() - started) / 1000).toFixed(0)}s`;
  const random = mulberry32(seed);
  let documents = shuffled(readWordNetDocuments(), random);
  if (options.documentLimit !== undefined) documents = documents.slice(0, options.documentLimit);
  const validationCount = Math.max(1, Math.round(documents.length * options.validationFraction));
  const validationDocuments = documents.slice(0, validationCount);
  const trainingDocuments = documents.slice(validationCount);

  const vocabulary = trainBpe(countWords(trainingDocuments), options.vocabularySize);
  const encoder = new BpeEncoder(vocabulary);
  const training = tokenStream(encoder, trainingDocuments, vocabulary.endOfTextId);
  const validation = tokenStream(encoder, validationDocuments, vocabulary.endOfTextId);
  log(`${trainingDocuments.length} training documents (${training.tokens.length} tokens), ${validationDocuments.length} held out ` +
    `(${validation.tokens.length} tokens); vocabulary ${vocabulary.tokens.length} (${elapsed()})`);

  const config: Gpt2Config = { ...options.model, vocab_size: vocabulary.tokens.length };
  const model = new Gpt2Model(config, initialParameters(config, seed));
  log(`GPT-2 ${config.n_layer} layers × ${config.n_embd} wide, ${config.n_head} heads, ${parameterCount(config)} parameters`);
  const optimizer = new AdamW(model.parameters, tensorLayout(config), {
    beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1, clipNorm: 1,
  });
  const evaluationRows = Math.max(batchSize, 32);
  const validationLoss = fixedRows(validation, seed + 1, evaluationRows, length);
  const inputs = new Int32Array(batchSize * length);
  const targets = new Int32Array(batchSize * length);
  const validationHistory: Array<[number, number]> = [];
  let recentLoss = 0, recentSteps = 0;
  for (let step = 0; step < steps; step++) {
    const learningRate = cosineLearningRate(step, steps, options.warmupSteps, options.peakLearningRate, 0.1);
    sampleRows(training, random, inputs, targets, batchSize, length);
    recentLoss += model.loss(inputs, targets, batchSize, length);
    recentSteps++;
    model.gradients.fill(0);
    model.backward();
    const gradientNorm = optimizer.update(model.gradients, learningRate);
    model.parametersChanged();
    const last = step + 1 === steps;
    if ((step + 1) % 10 === 0 || last) {
      log(`step ${step + 1}/${steps} loss ${(recentLoss / recentSteps).toFixed(4)} lr ${learningRate.toExponential(2)} ` +
        `grad-norm ${gradientNorm.toFixed(3)} (${elapsed()})`);
      recentLoss = 0;
      recentSteps = 0;
    }
    if ((step + 1) % options.evaluateEvery === 0 || last) {
      const loss = validationLoss(model, batchSize);
      validationHistory.push([step + 1, loss]);
      log(`step ${step + 1} validation loss ${loss.toFixed(4)} (${elapsed()})`);
    }
  }
  const finalValidation = validationHistory[validationHistory.length - 1]?.[1] ?? validationLoss(model, batchSize);
  const trainLoss = fixedRows(training, seed + 2, evaluationRows, length)(model, batchSize);
  log(`final: train loss ${trainLoss.toFixed(4)}, validation loss ${finalValidation.toFixed(4)} (${elapsed()})`);
  return {
    checkpoint: { config, parameters: model.parameters, vocabulary },
    model, encoder, trainLoss, validationLoss: finalValidation, validationHistory,
    tokensSeen: steps * batchSize * length, trainingTokens: training.tokens.length,
  };
}

/** Where the checkpoint is written when no --out is given: the committed one. */
const DEFAULT_OUTPUT = resolve(import.meta.dirname, 'checkpoint');

if (import.meta.main) {
  const { values } = parseArgs({ options: { steps: { type: 'string' }, out: { type: 'string' } } });
  const steps = values.steps === undefined ? DEFAULT_OPTIONS.steps : Number(values.steps);
  if (!Number.isInteger(steps) || steps < 1) throw new RangeError(`--steps must be a positive integer, got ${values.steps}`);
  const output = resolve(values.out ?? DEFAULT_OUTPUT);
  const result = trainWordNetGpt({ ...DEFAULT_OPTIONS, steps });
  writeCheckpoint(output, result.checkpoint, {
    trained_by: `node services/examples/wordnet-gpt/train.ts --steps ${steps}`,
    seed: String(DEFAULT_OPTIONS.seed),
    steps: String(steps),
    tokens_seen: String(result.tokensSeen),
    train_loss: result.trainLoss.toFixed(4),
    validation_loss: result.validationLoss.toFixed(4),
  });
  console.log(`wrote ${output}`);
  for (const prompt of ['dog:', 'water:', 'run:', 'happy:', 'computer:']) {
    const text = generateText(result.model, result.encoder, prompt, { maxNewTokens: 40, stopTokenId: result.checkpoint.vocabulary.endOfTextId });
    console.log(`${prompt}${text}`);
  }
}
