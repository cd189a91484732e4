/**
 * The Iris example: a small classifier trained in plain TypeScript and exported to ONNX, served
 * by `nexus up --example` (the tests train it through train.ts).
 */
export { trainIrisModel } from './train.ts';

/**
 * The folder holding the example's training code: a version stored from it records this folder's
 * latest commit as its lineage.
 */
export const IRIS_EXAMPLE_DIR = import.meta.dirname;
