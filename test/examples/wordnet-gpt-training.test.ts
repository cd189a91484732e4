/**
 * The WordNet GPT trainer on a tiny configuration: the loss falls, the same options give the same
 * weights bit for bit, and the checkpoint directory it writes reads back to the same model.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCheckpoint, writeCheckpoint } from '../../services/examples/wordnet-gpt/checkpoint.ts';
import { decodeSafetensors, encodeSafetensors } from '../../services/examples/wordnet-gpt/safetensors.ts';
import { DEFAULT_OPTIONS, trainWordNetGpt, type TrainedWordNetGpt, type WordNetGptOptions } from '../../services/examples/wordnet-gpt/train.ts';

const TRAIN_SCRIPT = fileURLToPath(new URL('../../services/examples/wordnet-gpt/train.ts', import.meta.url));

const TINY: WordNetGptOptions = {
  ...DEFAULT_OPTIONS,
  steps: 40,
  batchSize: 4,
  sequenceLength: 32,
  peakLearningRate: 1e-2,
  warmupSteps: 5,
  evaluateEvery: 10,
  vocabularySize: 400,
  model: { n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4, layer_norm_epsilon: 1e-5 },
  documentLimit: 3000,
  log: () => {},
};

describe('WordNet GPT trainer (tiny configuration)', () => {
  let trained: TrainedWordNetGpt;
  let directory: string;

  beforeAll(() => {
    trained = trainWordNetGpt(TINY);
    directory = mkdtempSync(join(tmpdir(), 'wordnet-gpt-'));
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('lowers the held-out loss well below the uniform guess', () => {
    const history = trained.validationHistory;
    expect(history.map(([step]) => step)).toEqual([10, 20, 30, 40]);
    expect(history[3][1]).toBeLessThan(history[0][1]);
    expect(trained.validationLoss).toBeLessThan(Math.log(TINY.vocabularySize) - 1);
    expect(trained.trainLoss).toBeLessThan(Math.log(TINY.vocabularySize) - 1);
    expect(trained.tokensSeen).toBe(40 * 4 * 32);
  });

  it('gives the same weights bit for bit when run again with the same options', () => {
    const again = trainWordNetGpt(TINY);
    expect(Buffer.from(again.checkpoint.parameters.buffer).equals(Buffer.from(trained.checkpoint.parameters.buffer))).toBe(true);
    expect(again.checkpoint.vocabulary).toEqual(trained.checkpoint.vocabulary);
  });

  it('writes a checkpoint directory that reads back to the same model and tokenizer', () => {
    writeCheckpoint(directory, trained.checkpoint, { steps: '40' });
    const read = readCheckpoint(directory);
    expect(read.config).toEqual(trained.checkpoint.config);
    expect(read.parameters).toEqual(trained.checkpoint.parameters);
    expect(read.vocabulary).toEqual(trained.checkpoint.vocabulary);
    expect(read.metadata).toEqual({ format: 'pt', steps: '40' });
    const config = JSON.parse(readFileSync(join(directory, 'config.json'), 'utf8'));
    expect(config).toMatchObject({ model_type: 'gpt2', vocab_size: 400, n_positions: 32, n_embd: 32, n_layer: 2, n_head: 4 });
  });

  it('refuses a checkpoint whose tensor shapes disagree with its config', () => {
    writeCheckpoint(directory, trained.checkpoint, {});
    const path = join(directory, 'model.safetensors');
    const { tensors } = decodeSafetensors(readFileSync(path));
    const wpe = tensors.find((tensor) => tensor.name === 'transformer.wpe.weight')!;
    wpe.shape = [16, 64];
    writeFileSync(path, encodeSafetensors(tensors));
    expect(() => readCheckpoint(directory)).toThrow(/tensor transformer\.wpe\.weight has shape \[16,64\], the config needs \[32,32\]/);
  });

  it('the script refuses a --steps that is not a positive integer, naming the flag', () => {
    let message = '';
    try {
      execFileSync('node', [TRAIN_SCRIPT, '--steps', 'ten'], { stdio: 'pipe' });
    } catch (error) {
      message = String((error as { stderr: Buffer }).stderr);
    }
    expect(message).toMatch(/--steps must be a positive integer, got ten/);
  });
});
