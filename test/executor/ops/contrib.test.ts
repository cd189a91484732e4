/**
 * The com.microsoft contrib operators against onnxruntime's CPU provider (which implements them)
 * on fresh random inputs: the Gelu family, the Skip* and Simplified layer normalizations with
 * their optional outputs, FusedMatMul's transposes and alpha, Attention (packed weights, raw 2-D
 * and 3-D masks, right / left padding positions, unidirectional, attention_bias, unequal V width,
 * a past state and present)
 * and MultiHeadAttention. BiasAdd
 * and BiasSoftmax, which ORT's CPU provider lacks, against ORT running the default-domain graph
 * their definition spells out. Sizes are odd (no tile multiples); refusals name domain, operator
 * and node.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { float, floats, GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { checkModelAgainstOrt, compileError, freshInputs, type InputSpec, type OutputSpec } from '../numerics/one-node.ts';
import { expectClose, randomIntegers, randomTensor, runOrt } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const MS = 'com.microsoft';

interface ContribCase {
  op: string;
  inputs: InputSpec[];
  outputs: OutputSpec[];
  attributes?: Record<string, AttributeValue>;
  /** Node inputs when they differ from the graph inputs ('' for an omitted optional one, initializer names). */
  nodeInputs?: string[];
  /** Node outputs when they differ from the graph outputs ('' for an unnamed one). */
  nodeOutputs?: string[];
  initializers?: Array<{ name: string; tensor: HostTensor }>;
  domain?: string;
  opset?: number;
}

function contribModel(testCase: ContribCase): Uint8Array {
  const graph = new GraphBuilder(testCase.op.toLowerCase());
  for (const input of testCase.inputs) graph.input(input.name, input.datatype ?? 'FP32', input.shape);
  for (const { name, tensor } of testCase.initializers ?? []) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
  graph.node(testCase.op, testCase.nodeInputs ?? testCase.inputs.map((input) => input.name), testCase.nodeOutputs ?? testCase.outputs.map((output) => output.name),
    testCase.attributes, `${testCase.op.toLowerCase()}_under_test`, testCase.domain ?? MS);
  for (const output of testCase.outputs) graph.output(output.name, output.datatype ?? 'FP32', output.shape);
  return graph.toBytes({ opset: testCase.opset ?? 17 });
}

const check = (testCase: ContribCase) => checkModelAgainstOrt(gpu, contribModel(testCase), testCase.inputs, testCase.outputs);
const fp = (name: string, shape: number[]): InputSpec => ({ name, shape });
const fp32Scalar = (value: number): HostTensor => ({ datatype: 'FP32', shape: [], data: Float32Array.of(value) });
const out = (name: string, shape: number[]): OutputSpec => ({ name, shape });
const weights = (name: string, shape: number[], scale = 0.5) => ({ name, tensor: randomTensor(shape, scale) });

describe('Gelu family', () => {
  it('Gelu: the erf form', () => check({ op: 'Gelu', inputs: [fp('x', [2, 7, 13])], outputs: [out('y', [2, 7, 13])] }));
  it('FastGelu with a bias', () => check({ op: 'FastGelu', inputs: [fp('x', [3, 5, 19]), fp('bias', [19])], outputs: [out('y', [3, 5, 19])] }));
  it('FastGelu without a bias', () => check({ op: 'FastGelu', inputs: [fp('x', [4, 33])], outputs: [out('y', [4, 33])] }));
  it('BiasGelu', () => check({ op: 'BiasGelu', inputs: [fp('a', [2, 9, 33]), fp('b', [33])], outputs: [out('y', [2, 9, 33])] }));
  it('QuickGelu, default alpha', () => check({ op: 'QuickGelu', inputs: [fp('x', [5, 3, 17])], outputs: [out('y', [5, 3, 17])] }));
  it('QuickGelu, alpha 1.25', () => check({ op: 'QuickGelu', inputs: [fp('x', [61])], outputs: [out('y', [61])], attributes: { alpha: float(1.25) } }));
  it('refuses a bias that is not the last dim, naming the shapes', async () => {
    const bytes = contribModel({ op: 'BiasGelu', inputs: [fp('a', [2, 3, 5]), fp('b', [3])], outputs: [out('y', [2, 3, 5])] });
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      await expect(model.run(freshInputs([fp('a', [2, 3, 5]), fp('b', [3])]))).rejects.toThrow(/BiasGelu bias has shape \[3\]/);
    } finally {
      model.dispose();
    }
  });
});

describe('SkipLayerNormalization', () => {
  const inputs = (skip: number[]) => [fp('x', [2, 7, 37]), fp('skip', skip), fp('gamma', [37]), fp('beta', [37]), fp('bias', [37])];
  it('every output: normalized, mean, inv_std_var and the sum', () => check({
    op: 'SkipLayerNormalization', inputs: inputs([2, 7, 37]),
    outputs: [out('y', [2, 7, 37]), out('mean', [2, 7, 1]), out('inv_std', [2, 7, 1]), out('sum', [2, 7, 37])], attributes: { epsilon: float(1e-5) },
  }));
  it('a (sequence, hidden) skip broadcast over the batch, the sum unnamed', () => check({
    op: 'SkipLayerNormalization', inputs: inputs([7, 37]), outputs: [out('y', [2, 7, 37])],
  }));
  it('gamma only, with the inverse standard deviation alone', () => check({
    op: 'SkipLayerNormalization', inputs: [fp('x', [3, 4, 130]), fp('skip', [1, 4, 130]), fp('gamma', [130])],
    outputs: [out('y', [3, 4, 130]), out('inv_std', [3, 4, 1])], nodeOutputs: ['y', '', 'inv_std'],
  }));
});

describe('SkipSimplifiedLayerNormalization and SimplifiedLayerNormalization', () => {
  it('SkipSimplified: normalized, inv_std_var and the sum (with a bias)', () => check({
    op: 'SkipSimplifiedLayerNormalization', inputs: [fp('x', [2, 5, 23]), fp('skip', [2, 5, 23]), fp('gamma', [23]), fp('bias', [23])],
    outputs: [out('y', [2, 5, 23]), out('inv_std', [2, 5, 1]), out('sum', [2, 5, 23])], nodeOutputs: ['y', '', 'inv_std', 'sum'],
  }));
  it('SkipSimplified without a bias', () => check({
    op: 'SkipSimplifiedLayerNormalization', inputs: [fp('x', [1, 9, 45]), fp('skip', [1, 9, 45]), fp('gamma', [45])], outputs: [out('y', [1, 9, 45])],
  }));
  it('SimplifiedLayerNormalization (ONNX domain) with inv_std_var', () => check({
    op: 'SimplifiedLayerNormalization', domain: '', inputs: [fp('x', [3, 5, 24]), fp('scale', [24])],
    outputs: [out('y', [3, 5, 24]), out('inv_std', [3, 5, 1])], attributes: { epsilon: float(1e-6) },
  }));
  it('SimplifiedLayerNormalization over the dims from axis 1', () => check({
    op: 'SimplifiedLayerNormalization', domain: '', inputs: [fp('x', [2, 3, 4, 5]), fp('scale', [3, 4, 5])], outputs: [out('y', [2, 3, 4, 5])], attributes: { axis: 1 },
  }));
});

describe('FusedConv and FusedGemm', () => {
  const activations: Array<[string, number[]]> = [['Relu', []], ['LeakyRelu', [0.2]], ['Clip', [-0.5, 0.5]], ['HardSigmoid', [0.3, 0.4]], ['Sigmoid', []], ['Tanh', []]];
  for (const [activation, parameters] of activations) {
    it(`FusedConv with a bias and Z, ${activation}`, () => check({
      op: 'FusedConv', inputs: [fp('x', [1, 3, 9, 11]), fp('z', [1, 5, 9, 11])], initializers: [weights('w', [5, 3, 3, 3]), weights('b', [5])],
      nodeInputs: ['x', 'w', 'b', 'z'], outputs: [out('y', [1, 5, 9, 11])],
      attributes: { activation, ...(parameters.length ? { activation_params: floats(parameters) } : {}), pads: [1, 1, 1, 1] },
    }));
  }
  it('FusedConv depthwise, strided, without bias or Z', () => check({
    op: 'FusedConv', inputs: [fp('x', [2, 4, 10, 7])], initializers: [weights('w', [4, 1, 3, 3])], nodeInputs: ['x', 'w'], outputs: [out('y', [2, 4, 4, 3])],
    attributes: { activation: 'Tanh', group: 4, strides: [2, 2] },
  }));
  for (const [activation, parameters] of activations.filter(([name]) => name !== 'Clip')) {
    it(`FusedGemm transB with C, ${activation}`, () => check({
      op: 'FusedGemm', inputs: [fp('a', [7, 13])], initializers: [weights('b', [9, 13]), weights('c', [9])], nodeInputs: ['a', 'b', 'c'], outputs: [out('y', [7, 9])],
      attributes: {
        activation, transB: 1, alpha: float(0.7), ...(parameters[0] === undefined ? {} : { activation_alpha: float(parameters[0]) }),
        ...(parameters[1] === undefined ? {} : { activation_beta: float(parameters[1]) }),
      },
    }));
  }
});

describe('QLinear operators (QOperator format)', () => {
  /** x (and y) quantized with ONNX's QuantizeLinear, `op` on the integers, the result dequantized: a mismatch of one step fails the float comparison. */
  /**
   * `scales` of x, y and the output: the default ratios are awkward; ratios of 1/2 (TIES) put many
   * results exactly on a half, where the order of adding the zero point and rounding decides.
   */
  function qlinear(
    op: string, type: 'UINT8' | 'INT8', shape: number[], binary: boolean, attributes: Record<string, AttributeValue> = {}, outShape = shape, scales = [0.0137, 0.0211, 0.0173],
  ): ContribCase & { bytes: Uint8Array } {
    const zero = (value: number) => ({ datatype: type, shape: [], data: type === 'INT8' ? Int8Array.of(value - 128) : Uint8Array.of(value) });
    const graph = new GraphBuilder(op.toLowerCase()).input('x', 'FP32', shape);
    if (binary) graph.input('y', 'FP32', shape);
    const parameters: Array<[string, HostTensor]> = [
      ['sx', fp32Scalar(scales[0])], ['zx', zero(131)], ['sy', fp32Scalar(scales[1])], ['zy', zero(120)], ['sc', fp32Scalar(scales[2])], ['zc', zero(125)],
    ];
    for (const [name, tensor] of parameters) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
    graph.node('QuantizeLinear', ['x', 'sx', 'zx'], ['qx'], {}, 'quantize_x');
    if (binary) graph.node('QuantizeLinear', ['y', 'sy', 'zy'], ['qy'], {}, 'quantize_y');
    const inputs = binary ? ['qx', 'sx', 'zx', 'qy', 'sy', 'zy', 'sc', 'zc'] : ['qx', 'sx', 'zx', 'sc', 'zc'];
    graph.node(op, inputs, ['qc'], attributes, `${op.toLowerCase()}_under_test`, MS).node('DequantizeLinear', ['qc', 'sc', 'zc'], ['out'], {}, 'dequantize');
    graph.output('out', 'FP32', outShape);
    return { op, inputs: binary ? [fp('x', shape), fp('y', shape)] : [fp('x', shape)], outputs: [out('out', outShape)], bytes: graph.toBytes({ opset: 13 }) };
  }
  const TIES = [0.02, 0.04, 0.04];
  const run = (testCase: ContribCase & { bytes: Uint8Array }) => checkModelAgainstOrt(gpu, testCase.bytes, testCase.inputs, testCase.outputs);
  for (const type of ['UINT8', 'INT8'] as const) {
    it(`QLinearAdd, ${type}`, () => run(qlinear('QLinearAdd', type, [2, 5, 7, 3], true)));
    it(`QLinearAdd on ties, ${type}`, () => run(qlinear('QLinearAdd', type, [2, 5, 7, 3], true, {}, undefined, TIES)));
    it(`QLinearMul, ${type}`, () => run(qlinear('QLinearMul', type, [3, 41], true)));
    it(`QLinearMul on ties, ${type}`, () => run(qlinear('QLinearMul', type, [3, 41], true, {}, undefined, [0.05, 0.04, 0.004])));
    it(`QLinearGlobalAveragePool, ${type}`, () => run(qlinear('QLinearGlobalAveragePool', type, [2, 6, 5, 7], false, {}, [2, 6, 1, 1])));
    it(`QLinearGlobalAveragePool on ties, ${type}`, () => run(qlinear('QLinearGlobalAveragePool', type, [2, 6, 4, 4], false, {}, [2, 6, 1, 1], [0.04, 1, 0.005])));
    it(`QLinearAveragePool on ties, ${type}`, () => run(qlinear('QLinearAveragePool', type, [1, 3, 8, 8], false, { kernel_shape: [2, 2], strides: [2, 2] }, [1, 3, 4, 4], [0.02, 1, 0.02])));
    it(`QLinearLeakyRelu, ${type}`, () => run(qlinear('QLinearLeakyRelu', type, [4, 33], false, { alpha: float(0.15) })));
    it(`QLinearSigmoid, ${type}`, () => run(qlinear('QLinearSigmoid', type, [4, 33], false)));
    it(`QLinearAveragePool 3×3 stride 2, padded, ${type}`, () => run(qlinear('QLinearAveragePool', type, [1, 3, 9, 8], false,
      { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], count_include_pad: type === 'INT8' ? 1 : 0 }, [1, 3, 5, 4])));
    it(`QLinearConcat of two inputs with their own scales, ${type}`, () => {
      const zero = (value: number) => ({ datatype: type, shape: [], data: type === 'INT8' ? Int8Array.of(value - 128) : Uint8Array.of(value) });
      const graph = new GraphBuilder('qlinear_concat').input('x', 'FP32', [2, 3, 4]).input('y', 'FP32', [2, 5, 4]);
      const parameters: Array<[string, HostTensor]> = [['sx', fp32Scalar(0.0137)], ['zx', zero(131)], ['sy', fp32Scalar(0.0211)], ['zy', zero(120)], ['sc', fp32Scalar(0.0173)], ['zc', zero(125)]];
      for (const [name, tensor] of parameters) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
      graph.node('QuantizeLinear', ['x', 'sx', 'zx'], ['qx'], {}, 'quantize_x').node('QuantizeLinear', ['y', 'sy', 'zy'], ['qy'], {}, 'quantize_y')
        .node('QLinearConcat', ['sc', 'zc', 'qx', 'sx', 'zx', 'qy', 'sy', 'zy'], ['qc'], { axis: 1 }, 'qlinearconcat_under_test', MS)
        .node('DequantizeLinear', ['qc', 'sc', 'zc'], ['out'], {}, 'dequantize').output('out', 'FP32', [2, 8, 4]);
      return checkModelAgainstOrt(gpu, graph.toBytes({ opset: 13 }), [fp('x', [2, 3, 4]), fp('y', [2, 5, 4])], [out('out', [2, 8, 4])]);
    });
  }
});

describe('EmbedLayerNormalization', () => {
  const [batch, length, hidden, vocabulary] = [2, 7, 30, 23];
  const ids = (name: string, high: number, shape = [batch, length]): InputSpec => ({ name, shape, datatype: 'INT32', fill: (s) => randomIntegers(s, 0, high, 'INT32') });
  const tables = [weights('word', [vocabulary, hidden], 1), weights('position', [16, hidden], 1), weights('segment', [2, hidden], 1), weights('gamma', [hidden], 1), weights('beta', [hidden], 0.2)];
  it('words, segments and positions 0..S-1, with mask_index and embedding_sum', () => check({
    op: 'EmbedLayerNormalization', inputs: [ids('ids', vocabulary - 1), ids('segments', 1), ids('mask', 1)], initializers: tables,
    nodeInputs: ['ids', 'segments', 'word', 'position', 'segment', 'gamma', 'beta', 'mask'],
    outputs: [out('y', [batch, length, hidden]), { name: 'mask_index', shape: [batch], datatype: 'INT32' }, out('sum', [batch, length, hidden])],
  }));
  it('position_ids (1, S) and no segments', () => check({
    op: 'EmbedLayerNormalization', inputs: [ids('ids', vocabulary - 1), ids('mask', 1), ids('position_ids', 15, [1, length])], initializers: tables,
    nodeInputs: ['ids', '', 'word', 'position', '', 'gamma', 'beta', 'mask', 'position_ids'],
    outputs: [out('y', [batch, length, hidden]), { name: 'mask_index', shape: [batch], datatype: 'INT32' }], attributes: { epsilon: float(1e-5) },
  }));
});

describe('FusedMatMul', () => {
  it('transA and alpha on batched operands', () => check({
    op: 'FusedMatMul', inputs: [fp('a', [2, 3, 11, 5]), fp('b', [2, 3, 11, 7])], outputs: [out('y', [2, 3, 5, 7])], attributes: { transA: 1, alpha: float(0.37) },
  }));
  it('transB with B computed at run time', () => check({
    op: 'FusedMatMul', inputs: [fp('a', [4, 9, 13]), fp('b', [4, 6, 13])], outputs: [out('y', [4, 9, 6])], attributes: { transB: 1 },
  }));
  it('transB with a constant B (laid out at load) and both transposes', () => check({
    op: 'FusedMatMul', inputs: [fp('a', [3, 19, 10])], initializers: [weights('w', [21, 19])], nodeInputs: ['a', 'w'], outputs: [out('y', [3, 10, 21])],
    attributes: { transA: 1, transB: 1, alpha: float(2) },
  }));
});

describe('MatMulNBits', () => {
  const [k, n, blockSize] = [40, 21, 16];
  const blocks = Math.ceil(k / blockSize);
  const bytes = (count: number) => ({ datatype: 'UINT8' as const, shape: [count], data: Uint8Array.from({ length: count }, () => Math.floor(Math.random() * 256)) });
  const quantized = (bits: number, zeros: 'packed' | 'float' | 'none', bias: boolean): ContribCase => {
    const blob = (blockSize * bits) / 8;
    const initializers = [
      { name: 'b', tensor: { ...bytes(n * blocks * blob), shape: [n, blocks, blob] } },
      { name: 'scales', tensor: randomTensor([n * blocks], 0.05) },
      ...(zeros === 'packed' ? [{ name: 'zeros', tensor: { ...bytes(n * Math.ceil((blocks * bits) / 8)), shape: [n * Math.ceil((blocks * bits) / 8)] } }] : []),
      ...(zeros === 'float' ? [{ name: 'zeros', tensor: randomTensor([n * blocks], 2 ** (bits - 1)) }] : []),
      ...(bias ? [weights('bias', [n])] : []),
    ];
    return {
      op: 'MatMulNBits', inputs: [fp('a', [2, 3, k])], initializers, nodeInputs: ['a', 'b', 'scales', zeros === 'none' ? '' : 'zeros', '', ...(bias ? ['bias'] : [])],
      outputs: [out('y', [2, 3, n])], attributes: { K: k, N: n, bits, block_size: blockSize },
    };
  };
  it('4 bits, packed zero points, a bias, K not a multiple of the block', () => check(quantized(4, 'packed', true)));
  it('4 bits, the default zero point', () => check(quantized(4, 'none', false)));
  it('4 bits, float zero points', () => check(quantized(4, 'float', false)));
  it('8 bits, packed zero points', () => check(quantized(8, 'packed', true)));
  it('2 bits, packed zero points', () => check(quantized(2, 'packed', false)));
});

describe('Attention', () => {
  const batch = 2;
  const length = 7;
  const hidden = 20;
  const base = (extra: Partial<ContribCase> = {}): ContribCase => ({
    op: 'Attention', initializers: [weights('w', [hidden, 3 * hidden]), weights('b', [3 * hidden])],
    nodeInputs: ['x', 'w', 'b'], outputs: [out('y', [batch, length, hidden])], attributes: { num_heads: 4 }, ...extra,
    inputs: [fp('x', [batch, length, hidden]), ...(extra.inputs ?? [])],
  });
  const mask = (shape: number[]): InputSpec => ({ name: 'mask', shape, datatype: 'INT32', fill: (s) => randomIntegers(s, 0, 1, 'INT32') });
  it('packed Q/K/V weights and bias, no mask', () => check(base()));
  it('a raw (batch, total_length) mask', () => check(base({ inputs: [mask([batch, length])], nodeInputs: ['x', 'w', 'b', 'mask'] })));
  it('a raw (batch, length, total_length) mask and unidirectional', () => check(base({
    inputs: [mask([batch, length, length])], nodeInputs: ['x', 'w', 'b', 'mask'], attributes: { num_heads: 4, unidirectional: 1 },
  })));
  it('right padding: mask_index (batch) of end positions, some past the end', () => check(base({
    inputs: [{ name: 'mask', shape: [batch], datatype: 'INT32', fill: (s) => randomIntegers(s, 0, length + 2, 'INT32') }], nodeInputs: ['x', 'w', 'b', 'mask'],
  })));
  it('left and right padding: mask_index (2 * batch) of ends then starts, with unidirectional', () => check(base({
    inputs: [{ name: 'mask', shape: [2 * batch], datatype: 'INT32', fill: (s) => randomIntegers(s, 0, length, 'INT32') }], nodeInputs: ['x', 'w', 'b', 'mask'],
    attributes: { num_heads: 4, unidirectional: 1 },
  })));
  it('unidirectional with attention_bias and a custom scale', () => check(base({
    inputs: [fp('attention_bias', [1, 4, length, length])], nodeInputs: ['x', 'w', 'b', '', '', 'attention_bias'], attributes: { num_heads: 4, unidirectional: 1, scale: float(0.3) },
  })));
  it('qkv_hidden_sizes with a wider V', () => check({
    op: 'Attention', inputs: [fp('x', [3, 5, 12])], initializers: [weights('w', [12, 8 + 8 + 16]), weights('b', [32])], nodeInputs: ['x', 'w', 'b'],
    outputs: [out('y', [3, 5, 16])], attributes: { num_heads: 2, qkv_hidden_sizes: [8, 8, 16] },
  }));
  const present = { name: 'present', shape: [2, batch, 4, 3 + length, 5] };
  it('a past state (GPT-2 decoding): unidirectional over past and new keys, a raw mask of the total length, present', () => check(base({
    inputs: [mask([batch, 3 + length]), fp('past', [2, batch, 4, 3, 5])], nodeInputs: ['x', 'w', 'b', 'mask', 'past'],
    outputs: [out('y', [batch, length, hidden]), present], attributes: { num_heads: 4, unidirectional: 1 },
  })));
  it('present without a past', () => check(base({ outputs: [out('y', [batch, length, hidden]), { name: 'present', shape: [2, batch, 4, length, 5] }] })));
  it('refuses past_sequence_length, naming the node', async () => {
    const error = await compileError(gpu, contribModel(base({
      inputs: [fp('past', [2, batch, 4, 3, 5]), { name: 'past_length', shape: [1], datatype: 'INT32' }], nodeInputs: ['x', 'w', 'b', '', 'past', '', 'past_length'],
    })));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("operator 'com.microsoft.Attention' (node 'attention_under_test') is not supported with past_sequence_length");
  });
});

describe('MultiHeadAttention', () => {
  const [batch, queries, keys, hidden] = [2, 5, 9, 12];
  const inputs = [fp('q', [batch, queries, hidden]), fp('k', [batch, keys, hidden]), fp('v', [batch, keys, hidden])];
  it('separate Q, K, V (cross attention)', () => check({ op: 'MultiHeadAttention', inputs, outputs: [out('y', [batch, queries, hidden])], attributes: { num_heads: 3 } }));
  it('with a packed bias, a key padding mask and attention_bias', () => check({
    op: 'MultiHeadAttention',
    inputs: [...inputs, { name: 'mask', shape: [batch, keys], datatype: 'INT32', fill: (s) => randomIntegers(s, 0, 1, 'INT32') }, fp('attention_bias', [batch, 1, queries, keys])],
    initializers: [weights('bias', [3 * hidden])], nodeInputs: ['q', 'k', 'v', 'bias', 'mask', 'attention_bias'],
    outputs: [out('y', [batch, queries, hidden])], attributes: { num_heads: 4 },
  }));
  it('decoding with past_key / past_value, present_key / present_value and unidirectional', () => check({
    op: 'MultiHeadAttention', inputs: [fp('q', [2, 3, 8]), fp('k', [2, 3, 8]), fp('v', [2, 3, 8]), fp('past_key', [2, 2, 5, 4]), fp('past_value', [2, 2, 5, 4])],
    nodeInputs: ['q', 'k', 'v', '', '', '', 'past_key', 'past_value'],
    outputs: [out('y', [2, 3, 8]), out('present_key', [2, 2, 8, 4]), out('present_value', [2, 2, 8, 4])], attributes: { num_heads: 2, unidirectional: 1 },
  }));
  it('present_key / present_value without a past', () => check({
    op: 'MultiHeadAttention', inputs, outputs: [out('y', [batch, queries, hidden]), out('present_key', [batch, 3, keys, 4]), out('present_value', [batch, 3, keys, 4])],
    attributes: { num_heads: 3 },
  }));
  it('unidirectional self attention with a key padding mask', () => check({
    op: 'MultiHeadAttention',
    inputs: [fp('q', [2, 6, 8]), fp('k', [2, 6, 8]), fp('v', [2, 6, 8]), { name: 'mask', shape: [2, 6], datatype: 'INT32', fill: (s) => randomIntegers(s, 0, 1, 'INT32') }],
    nodeInputs: ['q', 'k', 'v', '', 'mask'], outputs: [out('y', [2, 6, 8])], attributes: { num_heads: 2, unidirectional: 1 },
  }));
});

describe('RotaryEmbedding', () => {
  const positions = (shape: number[]): InputSpec => ({ name: 'position_ids', shape, datatype: 'INT64', fill: (s) => randomIntegers(s, 0, 31) });
  const caches = (width: number) => [weights('cos', [32, width], 1), weights('sin', [32, width], 1)];
  const rotary = (input: number[], width: number, attributes: Record<string, AttributeValue>) => check({
    op: 'RotaryEmbedding', inputs: [fp('x', input), positions(input.length === 4 ? [input[0], input[2]] : input.slice(0, 2))], initializers: caches(width),
    nodeInputs: ['x', 'position_ids', 'cos', 'sin'], outputs: [out('y', input)], attributes,
  });
  it('half rotation of whole heads, (batch, sequence, hidden)', () => rotary([2, 5, 30], 5, { num_heads: 3 }));
  it('interleaved pairs of the first 6 of 10 features', () => rotary([2, 5, 30], 3, { num_heads: 3, interleaved: 1, rotary_embedding_dim: 6 }));
  it('half rotation of the first 4 of 8 features, (batch, heads, sequence, head_size)', () => rotary([2, 3, 7, 8], 2, { rotary_embedding_dim: 4, num_heads: 3 }));
  it('interleaved whole heads, (batch, heads, sequence, head_size)', () => rotary([1, 2, 9, 6], 3, { interleaved: 1 }));
});

describe('GroupQueryAttention', () => {
  const [heads, kvHeads] = [4, 2];
  const int32 = (value: number) => (shape: number[]) => ({ datatype: 'INT32' as const, shape, data: new Int32Array(shape.reduce((a, b) => a * b, 1)).fill(value) });
  // onnxruntime takes several new tokens after a past only for one sequence (batch 1).
  // Head sizes as onnxruntime's CPU kernel takes them: multiples of 8, of 16 with do_rotary.
  const gqa = (past: number, bias: boolean, batch: number, queries: number, rotary?: { interleaved: number }, head = rotary ? 16 : 8): ContribCase => ({
    op: 'GroupQueryAttention',
    inputs: [
      fp('q', [batch, queries, heads * head]), fp('k', [batch, queries, kvHeads * head]), fp('v', [batch, queries, kvHeads * head]),
      fp('past_key', [batch, kvHeads, past, head]), fp('past_value', [batch, kvHeads, past, head]),
      { name: 'seqlens_k', shape: [batch], datatype: 'INT32', fill: int32(past + queries - 1) }, { name: 'total', shape: [], datatype: 'INT32', fill: int32(past + queries) },
      ...(bias ? [fp('attention_bias', [batch, heads, queries, past + queries])] : []),
    ],
    nodeInputs: ['q', 'k', 'v', 'past_key', 'past_value', 'seqlens_k', 'total', ...(rotary ? ['cos', 'sin'] : bias ? ['', ''] : []), ...(bias ? ['', 'attention_bias'] : [])],
    initializers: rotary ? [weights('cos', [16, head / 2], 1), weights('sin', [16, head / 2], 1)] : [],
    outputs: [out('y', [batch, queries, heads * head]), out('present_key', [batch, kvHeads, past + queries, head]), out('present_value', [batch, kvHeads, past + queries, head])],
    attributes: { num_heads: heads, kv_num_heads: kvHeads, ...(rotary ? { do_rotary: 1, rotary_interleaved: rotary.interleaved } : {}) },
  });
  it('3 new tokens after a past of 4, two query heads per kv head, causal over past and new keys', () => check(gqa(4, false, 1, 3)));
  it('decoding one token for 3 sequences, with attention_bias', () => check(gqa(5, true, 3, 1)));
  it('the prompt: an empty past', () => check(gqa(0, false, 2, 5)));
  it('do_rotary: Q and K rotated at their positions after the past, half rotation', () => check(gqa(4, false, 1, 3, { interleaved: 0 })));
  it('do_rotary: interleaved, decoding one token for 2 sequences with attention_bias', () => check(gqa(6, true, 2, 1, { interleaved: 1 })));
  it('refuses padded batches (seqlens_k not past + new - 1), naming the node', async () => {
    const testCase = gqa(4, false, 2, 1);
    const model = await compileOnnxModel(gpu, contribModel(testCase), { isolate: false });
    try {
      const inputs = freshInputs(testCase.inputs);
      inputs.set('seqlens_k', { datatype: 'INT32', shape: [2], data: Int32Array.of(4, 2) });
      await expect(model.run(inputs)).rejects.toThrow(/GroupQueryAttention' \(node 'groupqueryattention_under_test'\) is not supported with seqlens_k \+ 1 = \[5,3\]/);
    } finally {
      model.dispose();
    }
  });
});

describe('operators ORT CPU lacks, against their default-domain definition', () => {
  /** Runs our contrib model and ORT on the reference graph with the same fresh inputs. */
  async function checkAgainstReference(contrib: Uint8Array, reference: Uint8Array, specs: InputSpec[]) {
    const model = await compileOnnxModel(gpu, contrib, { isolate: false });
    try {
      for (let round = 0; round < 2; round++) {
        const inputs = freshInputs(specs);
        const [ours, expected] = await Promise.all([model.run(inputs), runOrt(reference, inputs)]);
        for (const [name, tensor] of expected) expectClose(name, ours.outputs.get(name), tensor);
      }
    } finally {
      model.dispose();
    }
  }
  it('BiasAdd = X + bias + skip', () => {
    const specs = [fp('x', [2, 9, 17]), fp('bias', [17]), fp('skip', [2, 9, 17])];
    const contrib = contribModel({ op: 'BiasAdd', inputs: specs, outputs: [out('y', [2, 9, 17])] });
    const reference = new GraphBuilder('bias_add').input('x', 'FP32', [2, 9, 17]).input('bias', 'FP32', [17]).input('skip', 'FP32', [2, 9, 17])
      .node('Add', ['x', 'bias'], ['t']).node('Add', ['t', 'skip'], ['y']).output('y', 'FP32', [2, 9, 17]).toBytes({ opset: 17 });
    return checkAgainstReference(contrib, reference, specs);
  });
  for (const [inner, biasShape] of [[0, [5, 11]], [1, [2, 1, 5, 11]]] as const) {
    it(`BiasSoftmax = Softmax-1(data + bias) from axis 2, is_inner_broadcast=${inner}`, () => {
      const specs = [fp('data', [2, 3, 5, 11]), fp('bias', [...biasShape])];
      const contrib = contribModel({ op: 'BiasSoftmax', inputs: specs, outputs: [out('y', [2, 3, 5, 11])], attributes: { axis: 2, is_inner_broadcast: inner } });
      const reference = new GraphBuilder('bias_softmax').input('data', 'FP32', [2, 3, 5, 11]).input('bias', 'FP32', [...biasShape])
        .node('Add', ['data', 'bias'], ['t']).node('Softmax', ['t'], ['y'], { axis: 2 }).output('y', 'FP32', [2, 3, 5, 11]).toBytes({ opset: 12 });
      return checkAgainstReference(contrib, reference, specs);
    });
  }
});

describe('other contrib operators and refusals', () => {
  it('Trilu (com.microsoft) keeps the lower triangle', () => check({ op: 'Trilu', inputs: [fp('x', [3, 6, 5])], outputs: [out('y', [3, 6, 5])], attributes: { upper: 0 } }));
  it('TransposeMatMul (FusedMatMul by its first name)', () => check({
    op: 'TransposeMatMul', inputs: [fp('a', [3, 7, 5]), fp('b', [3, 6, 7])], outputs: [out('y', [3, 5, 6])], attributes: { transA: 1, transB: 1, alpha: float(1.5) },
  }));
  for (const mode of ['bilinear', 'nearest', 'bicubic']) {
    it(`GridSample (com.microsoft, ONNX's opset-16 form), ${mode}`, () => check({
      op: 'GridSample', inputs: [fp('x', [2, 3, 6, 7]), { name: 'grid', shape: [2, 4, 5, 2], fill: (shape) => randomTensor(shape, 1.1) }], outputs: [out('y', [2, 3, 4, 5])],
      attributes: { mode, padding_mode: 'border', align_corners: 0 }, opset: 13,
    }));
  }
  for (const [zeroType, axis] of [['INT16', 1], ['UINT8', undefined]] as const) {
    it(`QuantizeLinear into DequantizeLinear (com.microsoft), ${zeroType} ${axis === undefined ? 'per tensor' : 'per axis'}`, () => {
      const count = axis === undefined ? 1 : 4;
      const zeros = Array.from({ length: count }, (_, index) => [3, 120, 7, 0][index] - (zeroType === 'INT16' ? 60 : 0));
      const shape = axis === undefined ? [] : [count];
      const graph = new GraphBuilder('qdq').input('x', 'FP32', [3, 4, 5])
        .initializer('scale', 'FP32', shape, Float32Array.from({ length: count }, (_, index) => [0.01, 0.02, 0.005, 0.03][index]))
        .initializer('zero', zeroType, shape, zeroType === 'INT16' ? Int16Array.from(zeros) : Uint8Array.from(zeros))
        .node('QuantizeLinear', ['x', 'scale', 'zero'], ['q'], axis === undefined ? {} : { axis }, 'quantize', MS)
        .node('DequantizeLinear', ['q', 'scale', 'zero'], ['y'], axis === undefined ? {} : { axis }, 'dequantize', MS)
        .output('y', 'FP32', [3, 4, 5]);
      return checkModelAgainstOrt(gpu, graph.toBytes({ opset: 17 }), [fp('x', [3, 4, 5])], [out('y', [3, 4, 5])]);
    });
  }
  for (const [domain, op] of [[MS, 'SparseAttention'], ['org.example', 'Gelu']] as const) {
    it(`refuses ${domain}.${op}, naming the domain, operator and node`, async () => {
      const error = await compileError(gpu, contribModel({ op, domain, inputs: [fp('x', [2, 3])], outputs: [out('y', [2, 3])] }));
      expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
      expect(error.message).toContain(`operator '${domain}.${op}' (node '${op.toLowerCase()}_under_test') is not supported`);
    });
  }
});
