/** Whole models built in code with random weights, shared by the numerics tests and benchmarks. */
export { type ExampleModel } from './common.ts';
export { buildResNetStyle } from './resnet-style.ts';
export { buildTransformerEncoder } from './transformer-encoder.ts';
