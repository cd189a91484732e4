/**
 * Dropout as inference runs it: the identity, with its optional mask all true. Training mode
 * with a ratio of 0 drops nothing, so it is the identity too; training with a ratio above 0
 * zeroes elements at random, which this executor does not do (refused, at load when both inputs
 * are constants, else per run). Without a mask the output is input 0's buffer (an alias); with
 * one, two copies: the input, and a single true broadcast over the mask.
 */
import { failedPrecondition } from '../../domain/errors.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { copyDispatch, copyVariants } from '../kernels/index.ts';
import { storageOf, stridesOf, toNumbers } from '../tensor/index.ts';
import { floatAttribute, qualifiedOpType } from './attributes.ts';
import type { CpuContext, NodeInput, OperatorSpec } from './contract.ts';
import { filled } from './cpu-indexing.ts';
import { parameterValue, required, type ParameterInputs } from './parameters.ts';
import { alias, inputStorage } from './spec-parts.ts';

/** ONNX's default ratio, which opset 12 moved from the attribute to input 1. */
const DEFAULT_RATIO = 0.5;

/**
 * Refuses training with a ratio above 0. `training` and `ratio` are undefined where the value is
 * not known (yet); absent inputs are ONNX's defaults (inference, ratio 0.5).
 */
function checkDeterministic(node: NodeProto, training: HostTensor | undefined, ratio: HostTensor | undefined, when: string): void {
  if (!training || toNumbers(training)[0] === 0) return;
  const ratioValue = ratio ? toNumbers(ratio)[0] : floatAttribute(node, 'ratio', DEFAULT_RATIO);
  if (ratioValue === 0) return;
  throw failedPrecondition(
    `operator '${qualifiedOpType(node)}' (node '${node.name}') is not supported with training_mode=true and ratio ${ratioValue} ${when}: `
    + 'training dropout zeroes elements at random; only ratio 0 (the identity) runs',
  );
}

/** Training mode and ratio as the plan sees them: inputs 2 and 1 where given. */
function checkInputs(node: NodeProto, inputs: ParameterInputs, when: string): void {
  if (!node.input[2]) return;
  checkDeterministic(node, parameterValue(inputs, 2), node.input[1] ? parameterValue(inputs, 1) : undefined, when);
}

function cpuDropout(context: CpuContext): HostTensor[] {
  checkInputs(context.node, context.inputs, 'in this run');
  const input = context.inputs[0]!.value!;
  if (!context.node.output[1]) return [input];
  context.allocator.reserve(context.node, input.shape, 'BOOL');
  return [input, filled('BOOL', input.shape, 1)];
}

export const dropoutSpec: OperatorSpec = {
  // `seed` only matters in training; `ratio` / `is_test` are the attributes of opsets before 12.
  attributes: ['seed', 'ratio', 'is_test'],
  inputs: [1, 3],
  outputs: [1, 2],
  computesEveryOutput: true,
  parameters: [1, 2],
  types: ({ node, inputTypes }) => node.output.map((_, index) => (index === 0 ? inputTypes[0] ?? 'FP32' : 'BOOL')),
  cpu: cpuDropout,
  device(context) {
    const { node } = context;
    // A constant training_mode=true with a constant ratio is a property of the model: refused at load.
    const ratioKnown = !node.input[1] || context.inputs[1]?.constant;
    if (node.input[2] && ratioKnown) checkDeterministic(node, context.inputs[2]?.constant, context.inputs[1]?.constant, 'in the model');
    const shapeOf = (inputs: ReadonlyArray<NodeInput | undefined>) => {
      checkInputs(node, inputs, 'in this run');
      return [...required(inputs, 0).shape];
    };
    if (!node.output[1]) return alias(shapeOf);
    const inputCopies = copyVariants(inputStorage(context, 0));
    const maskCopies = copyVariants(storageOf('BOOL', context.precision));
    const trueName = context.addConstant('true', filled('BOOL', [1], 1));
    return {
      kind: 'kernel',
      variants: [...inputCopies, ...maskCopies],
      plan(inputs, maxPerDimension) {
        const shape = shapeOf(inputs);
        const strides = stridesOf(shape);
        const copy = copyDispatch({ shape, inStrides: strides, outStrides: strides, inOffset: 0, outOffset: 0 }, maxPerDimension);
        const broadcast = copyDispatch({ shape, inStrides: shape.map(() => 0), outStrides: strides, inOffset: 0, outOffset: 0 }, maxPerDimension);
        return {
          outputShapes: [shape, [...shape]],
          dispatches: [
            { ...copy, bindings: [{ input: 0 }, { output: 0 }] },
            { ...broadcast, variant: inputCopies.length + (broadcast.variant ?? 0), bindings: [{ value: trueName }, { output: 1 }] },
          ],
        };
      },
    };
  },
};
