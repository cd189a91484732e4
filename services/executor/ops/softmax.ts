/**
 * Softmax and LogSoftmax along one axis (opset 13+) or over the dims from `axis` (earlier
 * opsets), with an optional fused input scale (attention's 1 / sqrt(d)).
 */
import { softmaxDispatch, softmaxVariants } from '../kernels/index.ts';
import { kindOf, softmaxProblem } from '../tensor/index.ts';
import { intAttribute, unsupported } from './attributes.ts';
import type { OperatorSpec } from './contract.ts';
import { required } from './parameters.ts';
import { inputStorage, io, rowKernelMaxLength, sameAsInput } from './spec-parts.ts';

export function softmaxSpec(logOutput: boolean): OperatorSpec {
  return {
    attributes: ['axis'],
    inputs: [1, 1],
    types: sameAsInput,
    device(context) {
      const { node, opset } = context;
      const axis = intAttribute(node, 'axis', opset >= 13 ? -1 : 1);
      if (kindOf(context.inputs[0].datatype!) !== 'float') throw unsupported(node, `${context.inputs[0].datatype} input`);
      const options = { scale: context.epilogue?.inputScale ?? 1, maxRowLength: rowKernelMaxLength(context.traits) };
      return {
        kind: 'kernel',
        variants: softmaxVariants(inputStorage(context, 0)),
        plan(inputs, maxPerDimension) {
          const shape = [...required(inputs, 0).shape];
          return {
            outputShapes: [shape],
            dispatches: [{ ...softmaxDispatch(softmaxProblem(shape, axis, opset), logOutput, maxPerDimension, options), bindings: io(1) }],
          };
        },
      };
    },
  };
}
