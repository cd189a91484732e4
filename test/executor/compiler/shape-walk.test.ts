/**
 * Shape inference through the compiled operators, without a GPU: Conv and pool output sizes
 * per input shape, Reshape with 0 / -1, and shape errors that name
 * the node.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { compileGraph, walkShapes } from '../../../services/executor/compiler/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';

const compile = (builder: GraphBuilder) => compileGraph(builder.toModel({ opset: 17 }), { precision: 'fp32', traits: { gemmAlgorithm: 'tiled' } });

function shapeOf(builder: GraphBuilder, inputShapes: Record<string, number[]>, value: string): readonly number[] | undefined {
  const graph = compile(builder);
  return walkShapes(graph.steps, graph.constants, new Map(Object.entries(inputShapes)), 65535).shapes.get(value);
}

function conv(attributes: Record<string, AttributeValue>, kernel = [3, 3]): GraphBuilder {
  return new GraphBuilder('conv')
    .input('x', 'FP32', ['N', 2, 'H', 'W'])
    .initializer('w', 'FP32', [4, 2, ...kernel], new Float32Array(8 * kernel[0] * kernel[1]))
    .node('Conv', ['x', 'w'], ['y'], attributes, 'conv')
    .output('y', 'FP32', ['N', 4, 'H', 'W']);
}

describe('window operators per input shape', () => {
  it('Conv with pads, strides and dilations', () => {
    expect(shapeOf(conv({ pads: [1, 1, 1, 1], strides: [2, 2] }), { x: [3, 2, 17, 16] }, 'y')).toEqual([3, 4, 9, 8]);
    expect(shapeOf(conv({ dilations: [2, 2] }), { x: [1, 2, 9, 9] }, 'y')).toEqual([1, 4, 5, 5]);
  });

  it('Conv with auto_pad SAME_UPPER keeps ceil(in / stride)', () => {
    expect(shapeOf(conv({ auto_pad: 'SAME_UPPER', strides: [2, 2] }), { x: [1, 2, 7, 8] }, 'y')).toEqual([1, 4, 4, 4]);
  });

  it('MaxPool with ceil_mode and AveragePool with VALID', () => {
    const pool = (opType: string, attributes: Record<string, AttributeValue>) => new GraphBuilder('pool')
      .input('x', 'FP32', ['N', 3, 'H', 'W']).node(opType, ['x'], ['y'], attributes, 'pool').output('y', 'FP32', ['N', 3, 'H', 'W']);
    expect(shapeOf(pool('MaxPool', { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }), { x: [2, 3, 6, 6] }, 'y')).toEqual([2, 3, 3, 3]);
    expect(shapeOf(pool('MaxPool', { kernel_shape: [3, 3], strides: [2, 2] }), { x: [2, 3, 6, 6] }, 'y')).toEqual([2, 3, 2, 2]);
    expect(shapeOf(pool('AveragePool', { kernel_shape: [2, 2], auto_pad: 'VALID', pads: [1, 1, 1, 1] }), { x: [1, 3, 5, 4] }, 'y')).toEqual([1, 3, 4, 3]);
  });

  it('refuses an input whose channels do not match the weights, naming the node', () => {
    const graph = compile(conv({}));
    try {
      walkShapes(graph.steps, graph.constants, new Map([['x', [1, 3, 8, 8]]]), 65535);
      throw new Error('expected INVALID_ARGUMENT');
    } catch (error) {
      expect((error as NexusError).code).toBe(ErrorCode.INVALID_ARGUMENT);
      expect((error as Error).message).toBe("Conv 'conv': Conv input has 3 channels, the weights expect 2");
    }
  });
});

describe('Reshape with 0 and -1', () => {
  it('copies dim 0 and infers the -1 dim anew for each input shape', () => {
    const builder = new GraphBuilder('reshape')
      .input('x', 'FP32', ['N', 'S', 6])
      .initializer('zero', 'INT64', [1], BigInt64Array.of(0n))
      .initializer('tail', 'INT64', [2], BigInt64Array.of(-1n, 3n))
      .node('Concat', ['zero', 'tail'], ['target'], { axis: 0 }, 'target')
      .node('Reshape', ['x', 'target'], ['y'], {}, 'reshape')
      .output('y', 'FP32', ['N', -1, 3]);
    expect(shapeOf(builder, { x: [2, 5, 6] }, 'y')).toEqual([2, 10, 3]);
    expect(shapeOf(builder, { x: [4, 1, 6] }, 'y')).toEqual([4, 2, 3]);
  });
});
