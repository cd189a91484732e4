/**
 * Load-time fusion: the rules, each a pure graph -> graph function in its own file, composed
 * in the order that lets each one see what the previous ones made:
 *
 * 1. fold-batchnorm-into-conv: BatchNormalization into the Conv's weights and bias;
 * 2. fuse-softmax-scale: a Mul / Div by a scalar constant into the Softmax after it;
 * 3. fuse-epilogue: bias, residual and activation into the GEMM / convolution / binary op before them;
 * 4. fuse-transpose-into-matmul: a Transpose read in place by the MatMul after it.
 */
import { foldBatchNormIntoConv } from './fold-batchnorm-into-conv.ts';
import { fuseEpilogues } from './fuse-epilogue.ts';
import { fuseSoftmaxScale } from './fuse-softmax-scale.ts';
import { fuseTransposeIntoMatMul } from './fuse-transpose-into-matmul.ts';
import type { FusionContext, FusionRule } from './fusion-rule.ts';
import type { Graph } from './graph.ts';
import type { ProbeShapes } from './shape-walk.ts';

/** The rules after BatchNormalization folding, in the order they run. */
const RULES: readonly FusionRule[] = [fuseSoftmaxScale, fuseEpilogues, fuseTransposeIntoMatMul];

export interface FuseOptions {
  /** Every value's shapes of `graph` (unfused) for probe input shapes; undefined when the model refuses them. */
  probeShapes(graph: Graph): ProbeShapes | undefined;
}

/** `graph` with every rule applied; what each merged away is appended to `fused`. */
export function fuseGraph(graph: Graph, options: FuseOptions): Graph {
  const folded = foldBatchNormIntoConv(graph);
  // No rule changes a value's shape, so one probe of the folded graph serves all of them; it
  // is only walked when a rule asks.
  let probed: { shapes: ProbeShapes | undefined } | undefined;
  const context: FusionContext = {
    probe: () => (probed ??= { shapes: options.probeShapes(folded) }).shapes,
  };
  return RULES.reduce((current, rule) => rule(current, context), folded);
}
