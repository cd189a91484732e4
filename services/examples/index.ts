/**
 * Example models, not services. What the CLI may use: the Iris classifier that
 * `nexus up --example` trains and serves, and the WordNet GPT language model's committed
 * checkpoint. The models built in code for the numerics tests and benchmarks are models/index.ts.
 */
export { IRIS_EXAMPLE_DIR, trainIrisModel } from './iris/index.ts';
/** The WordNet GPT language model: its committed Hugging Face checkpoint directory and what it is. */
export { WORDNET_GPT_EXAMPLE } from './wordnet-gpt/index.ts';
