/**
 * Example models, not services. What the CLI may use: the Iris classifier that
 * `nexus up --example` trains and serves. The models built in code for the numerics tests and
 * benchmarks are models/index.ts.
 */
export { IRIS_EXAMPLE_DIR, trainIrisModel } from './iris/index.ts';
