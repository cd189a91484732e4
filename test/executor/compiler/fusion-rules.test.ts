/**
 * Each fusion rule as a pure graph -> graph function, without a GPU: what fuses, and what must
 * not (an intermediate with a second reader, a graph output, a value that is not known at load).
 */
import { describe, expect, it } from 'vitest';
import {
  foldBatchNormIntoConv, fuseEpilogues, fuseSoftmaxScale, fuseTransposeIntoMatMul,
} from '../../../services/executor/compiler/index.ts';
import { float, GraphBuilder } from '../../../services/onnx/builder.ts';
import { contextFor, labelOf, nodeNames, placed } from './graph-helpers.ts';

const ones = (count: number, value = 1) => new Float32Array(count).fill(value);

/** x [1, 2, 5, 5] -> Conv 'conv' (2 -> 3 channels, 3x3, pads 1) -> BatchNormalization 'bn' -> `bnOutput`. */
function convBn(bnOutput = 'n'): GraphBuilder {
  return new GraphBuilder('conv_bn')
    .input('x', 'FP32', [1, 2, 5, 5])
    .initializer('w', 'FP32', [3, 2, 3, 3], ones(54, 0.5))
    .initializer('b', 'FP32', [3], Float32Array.of(1, 2, 3))
    .initializer('gamma', 'FP32', [3], Float32Array.of(2, 2, 2))
    .initializer('beta', 'FP32', [3], Float32Array.of(0, 1, 0))
    .initializer('mean', 'FP32', [3], Float32Array.of(1, 1, 1))
    .initializer('var', 'FP32', [3], Float32Array.of(3, 3, 3))
    .node('Conv', ['x', 'w', 'b'], ['c'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }, 'conv')
    .node('BatchNormalization', ['c', 'gamma', 'beta', 'mean', 'var'], [bnOutput], { epsilon: float(1) }, 'bn');
}

describe('fold-batchnorm-into-conv', () => {
  it('folds the statistics into the weights and bias: w * s, (b - mean) * s + beta with s = gamma / sqrt(var + eps)', () => {
    const model = placed(convBn().node('Relu', ['n'], ['y'], {}, 'relu').output('y', 'FP32', [1, 3, 5, 5]));
    const before = model.graph;
    const after = foldBatchNormIntoConv(before);
    expect(nodeNames(after)).toEqual(['Conv:conv', 'Relu:relu']);
    expect(after.fused).toEqual(["BatchNormalization 'bn' into Conv 'conv'"]);
    const conv = after.nodes[0].node;
    expect(conv.input).toEqual(['x', 'conv::bn_folded_weights', 'conv::bn_folded_bias']);
    expect(conv.output).toEqual(['n']);
    // s = 2 / sqrt(3 + 1) = 1.
    expect(Array.from(after.constants.get('conv::bn_folded_weights')!.data as Float32Array).slice(0, 3)).toEqual([0.5, 0.5, 0.5]);
    expect(Array.from(after.constants.get('conv::bn_folded_bias')!.data as Float32Array)).toEqual([0, 2, 2]);
    // Pure: the graph it was given is unchanged.
    expect(nodeNames(before)).toEqual(['Conv:conv', 'BatchNormalization:bn', 'Relu:relu']);
    expect(before.constants.has('conv::bn_folded_weights')).toBe(false);
  });

  it('does not fold when the Conv output has a second reader', () => {
    const model = placed(convBn().node('Relu', ['c'], ['r'], {}, 'also_reads_c').output('n', 'FP32', [1, 3, 5, 5]).output('r', 'FP32', [1, 3, 5, 5]));
    const after = foldBatchNormIntoConv(model.graph);
    expect(after).toBe(model.graph);
    expect(nodeNames(after)).toContain('BatchNormalization:bn');
  });

  it('does not fold when the Conv output is itself a graph output', () => {
    const model = placed(convBn().output('n', 'FP32', [1, 3, 5, 5]).output('c', 'FP32', [1, 3, 5, 5]));
    expect(foldBatchNormIntoConv(model.graph).fused).toEqual([]);
  });
});

describe('fuse-epilogue', () => {
  const matmul = () => new GraphBuilder('mm')
    .input('x', 'FP32', ['N', 4])
    .initializer('w', 'FP32', [4, 6], ones(24))
    .initializer('bias', 'FP32', [6], ones(6, 0.25))
    .node('MatMul', ['x', 'w'], ['p'], {}, 'mm');

  it('takes a per-column constant Add as a bias and the Relu after it as the activation', () => {
    const model = placed(matmul().node('Add', ['p', 'bias'], ['s'], {}, 'add').node('Relu', ['s'], ['y'], {}, 'relu').output('y', 'FP32', ['N', 6]));
    const after = fuseEpilogues(model.graph, contextFor(model));
    expect(nodeNames(after)).toEqual(['MatMul:mm']);
    expect(labelOf(after, 'mm')).toBe("MatMul 'mm' + Add 'add' + Relu 'relu'");
    expect(after.fused).toEqual(["Add 'add' into MatMul 'mm'", "Relu 'relu' into MatMul 'mm'"]);
    const [head] = after.nodes;
    expect(head.node.output).toEqual(['y']);
    expect(head.fusion!.extraInputs).toEqual(['mm::fused_bias']);
    expect(head.fusion!.epilogue.bias).toBe(2);
    // It runs where the Relu ran, after everything it reads.
    expect(head.position).toBe(model.graph.nodes.find((entry) => entry.node.name === 'relu')!.position);
  });

  it('takes a residual of the output shape, proven on the probe shapes', () => {
    const model = placed(new GraphBuilder('residual')
      .input('x', 'FP32', ['N', 4]).initializer('w', 'FP32', [4, 4], ones(16))
      .node('MatMul', ['x', 'w'], ['p'], {}, 'mm').node('Add', ['p', 'x'], ['y'], {}, 'add').output('y', 'FP32', ['N', 4]));
    const after = fuseEpilogues(model.graph, contextFor(model));
    expect(after.nodes[0].fusion!.extraInputs).toEqual(['x']);
    expect(after.nodes[0].fusion!.epilogue.residual).toBe(2);
  });

  it('does not fuse an Add whose other operand broadcasts to the output (not a residual of its shape)', () => {
    const model = placed(new GraphBuilder('broadcast')
      .input('x', 'FP32', ['N', 4]).input('row', 'FP32', [1, 4]).initializer('w', 'FP32', [4, 4], ones(16))
      .node('MatMul', ['x', 'w'], ['p'], {}, 'mm').node('Add', ['p', 'row'], ['y'], {}, 'add').output('y', 'FP32', ['N', 4]));
    expect(fuseEpilogues(model.graph, contextFor(model))).toBe(model.graph);
  });

  it('does not fuse when the MatMul output has a second reader, or is a graph output', () => {
    const twoReaders = placed(matmul().node('Relu', ['p'], ['y'], {}, 'relu').node('Neg', ['p'], ['z'], {}, 'neg')
      .output('y', 'FP32', ['N', 6]).output('z', 'FP32', ['N', 6]));
    expect(fuseEpilogues(twoReaders.graph, contextFor(twoReaders))).toBe(twoReaders.graph);
    const graphOutput = placed(matmul().node('Relu', ['p'], ['y'], {}, 'relu').output('y', 'FP32', ['N', 6]).output('p', 'FP32', ['N', 6]));
    expect(fuseEpilogues(graphOutput.graph, contextFor(graphOutput)).fused).toEqual([]);
  });

  it('does not give an integer op an activation', () => {
    const model = placed(new GraphBuilder('int').input('a', 'INT64', [3]).input('b', 'INT64', [3])
      .node('Add', ['a', 'b'], ['s'], {}, 'add').node('Relu', ['s'], ['y'], {}, 'relu').output('y', 'INT64', [3]));
    expect(fuseEpilogues(model.graph, contextFor(model)).fused).toEqual([]);
  });
});

describe('fuse-softmax-scale', () => {
  const scaled = (opType: 'Mul' | 'Div', factor: string) => new GraphBuilder('attention')
    .input('scores', 'FP32', ['N', 8]).input('other', 'FP32', ['N', 8])
    .initializer('k', 'FP32', [], Float32Array.of(8))
    .node(opType, ['scores', factor], ['scaled'], {}, 'scale')
    .node('Softmax', ['scaled'], ['y'], { axis: -1 }, 'softmax');

  it('takes a Div by a scalar constant as the input scale 1 / k, reading the Div input instead', () => {
    const model = placed(scaled('Div', 'k').output('y', 'FP32', ['N', 8]));
    const after = fuseSoftmaxScale(model.graph, contextFor(model));
    expect(nodeNames(after)).toEqual(['Softmax:softmax']);
    expect(after.nodes[0].node.input[0]).toBe('scores');
    expect(after.nodes[0].fusion!.epilogue.inputScale).toBe(1 / 8);
    expect(labelOf(after, 'softmax')).toBe("Div 'scale' + Softmax 'softmax'");
  });

  it('does not take a Mul by a tensor, or a product with a second reader', () => {
    const byTensor = placed(scaled('Mul', 'other').output('y', 'FP32', ['N', 8]));
    expect(fuseSoftmaxScale(byTensor.graph, contextFor(byTensor))).toBe(byTensor.graph);
    const twoReaders = placed(scaled('Mul', 'k').node('Neg', ['scaled'], ['z'], {}, 'neg').output('y', 'FP32', ['N', 8]).output('z', 'FP32', ['N', 8]));
    expect(fuseSoftmaxScale(twoReaders.graph, contextFor(twoReaders))).toBe(twoReaders.graph);
  });
});

describe('fuse-transpose-into-matmul', () => {
  const attention = (perm: number[] | undefined) => new GraphBuilder('heads')
    .input('q', 'FP32', ['N', 3, 4]).input('k', 'FP32', ['N', 3, 4])
    .node('Transpose', ['k'], ['kt'], perm ? { perm } : {}, 'transpose')
    .node('MatMul', ['q', 'kt'], ['y'], {}, 'mm');

  it('reads B through the permutation instead of a transposed copy', () => {
    const model = placed(attention([0, 2, 1]).output('y', 'FP32', ['N', 3, 3]));
    const after = fuseTransposeIntoMatMul(model.graph);
    expect(nodeNames(after)).toEqual(['MatMul:mm']);
    expect(after.nodes[0].node.input).toEqual(['q', 'k']);
    expect(after.nodes[0].fusion!.epilogue.bPerm).toEqual([0, 2, 1]);
    expect(after.fused).toEqual(["Transpose 'transpose' into MatMul 'mm'"]);
  });

  it('does not fold a Transpose without an explicit perm, or one whose output has a second reader', () => {
    const implicit = placed(attention(undefined).output('y', 'FP32', ['N', 3, 3]));
    expect(fuseTransposeIntoMatMul(implicit.graph)).toBe(implicit.graph);
    const twoReaders = placed(attention([0, 2, 1]).node('Relu', ['kt'], ['z'], {}, 'relu').output('y', 'FP32', ['N', 3, 3]).output('z', 'FP32', ['N', 4, 3]));
    expect(fuseTransposeIntoMatMul(twoReaders.graph)).toBe(twoReaders.graph);
  });
});
