/**
 * LRN (local response normalization across channels, AlexNet / Inception v1 / ZFNet): one
 * kernel on the GPU, and a CPU implementation for constant inputs.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { lrnDispatch, lrnVariant, type LrnAttributes } from '../kernels/index.ts';
import { numberView, product } from '../tensor/index.ts';
import { attributeOf, floatAttribute, intAttribute, invalidNode } from './attributes.ts';
import type { CpuContext, OperatorSpec } from './contract.ts';
import { reserve, store } from './cpu-indexing.ts';
import { required, requiredValue } from './parameters.ts';
import { floatStorage, io, sameAsInput } from './spec-parts.ts';

/** The node's attributes with ONNX's defaults; `size` is required and positive. */
function lrnAttributes(node: NodeProto): LrnAttributes {
  if (!attributeOf(node, 'size')) throw invalidNode(node, 'LRN needs the size attribute');
  const size = intAttribute(node, 'size', 0);
  if (size < 1) throw invalidNode(node, `size=${size} (it must be at least 1)`);
  return { size, alpha: floatAttribute(node, 'alpha', 1e-4), beta: floatAttribute(node, 'beta', 0.75), bias: floatAttribute(node, 'bias', 1) };
}

function checkedShape(shape: readonly number[]): number[] {
  if (shape.length < 3) throw invalidArgument(`LRN needs an input [N, C, spatial...], got [${shape}]`);
  return [...shape];
}

function cpuLrn(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const shape = checkedShape(input.shape);
  reserve(context, shape, context.outputTypes[0]);
  const { size, alpha, beta, bias } = lrnAttributes(context.node);
  const [channels, plane] = [shape[1], product(shape.slice(2))];
  const x = numberView(input);
  const y = new Float64Array(x.length);
  const [before, after] = [Math.floor((size - 1) / 2), Math.ceil((size - 1) / 2)];
  for (let index = 0; index < x.length; index++) {
    const channel = Math.floor(index / plane) % channels;
    const sampleBase = index - channel * plane;
    let squareSum = 0;
    for (let j = Math.max(0, channel - before); j <= Math.min(channels - 1, channel + after); j++) squareSum += x[sampleBase + j * plane] ** 2;
    y[index] = x[index] / (bias + (alpha / size) * squareSum) ** beta;
  }
  return [store(context.outputTypes[0], shape, y)];
}

export const lrnSpec: OperatorSpec = {
  attributes: ['size', 'alpha', 'beta', 'bias'],
  inputs: [1, 1],
  types: sameAsInput,
  validate: (node) => { lrnAttributes(node); },
  cpu: cpuLrn,
  device(context) {
    const attributes = lrnAttributes(context.node);
    return {
      kind: 'kernel',
      variants: [lrnVariant(floatStorage(context))],
      plan(inputs, maxPerDimension) {
        const shape = checkedShape(required(inputs, 0).shape);
        return { outputShapes: [shape], dispatches: [{ ...lrnDispatch(shape, attributes, maxPerDimension), bindings: io(1) }] };
      },
    };
  },
};
