/** ONNX models: datatypes, decoding, signatures and a builder for models made in code. */
export * from './datatypes.ts';
export * from './model.ts';
export * from './builder.ts';
