/** Whole models built in code with random weights, shared by the numerics tests and benchmarks. */
export { type ExampleModel } from './common.ts';
export { buildResNetStyle, type ResNetStyleOptions } from './resnet-style.ts';
export { buildTransformerEncoder, type TransformerEncoderOptions } from './transformer-encoder.ts';
