/**
 * The WordNet GPT example: a small GPT-2 language model, tokenizer and weights trained by our own
 * TypeScript (train.ts) on WordNet's glosses and committed as a Hugging Face checkpoint directory,
 * for serving text generation.
 */
import { join } from 'node:path';

export const WORDNET_GPT_EXAMPLE = {
  /** The model's name in the registry. */
  modelName: 'wordnet-gpt',
  /** The committed checkpoint: config.json, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json. */
  checkpointDir: join(import.meta.dirname, 'checkpoint'),
  /** The folder of the code that trained it: a stored version records this folder's latest commit as its lineage. */
  sourceDir: import.meta.dirname,
  description: 'GPT-2 language model (2 layers, 128 wide, 0.68M parameters) trained from scratch on WordNet glosses; '
    + 'prompt with a word and a colon ("dog:") and it writes a dictionary-style definition',
  /** A prompt that shows what it does. */
  samplePrompt: 'dog:',
} as const;
