/**
 * Load-time fusion against onnxruntime: the fused chains compute what the unfused graph does,
 * and the plan really is fused. Each compiled model lists its GPU steps in run order
 * (`stepLabels`, "Conv 'conv' + Relu 'relu'") and what fusion merged away (`fused`), so these
 * tests fail as soon as a chain stops fusing, not only when it computes something wrong. The
 * chains that must not fuse (an intermediate read twice, or a graph output) are checked the
 * same way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { float, GraphBuilder } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { expectMatchesOrt, randomTensor } from './ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

/** Uniform in [low, high). */
function between(shape: number[], low: number, high: number): HostTensor {
  const tensor = randomTensor(shape, 1);
  const data = tensor.data as Float32Array;
  for (let index = 0; index < data.length; index++) data[index] = low + (data[index] + 1) / 2 * (high - low);
  return tensor;
}

/** Adds a random initializer to `graph` and returns its name. */
function weight(graph: GraphBuilder, name: string, tensor: HostTensor): string {
  graph.initializer(name, 'FP32', tensor.shape, tensor.data as Float32Array);
  return name;
}

interface Expected {
  /** The model's GPU steps, in run order. */
  steps: string[];
  /** What fusion reports it merged away (order included). */
  fused: string[];
}

/**
 * Compiles `bytes`, checks the plan's steps, then two runs on fresh inputs against onnxruntime
 * (the second reuses the plan).
 */
async function checkFusion(bytes: Uint8Array, inputs: Array<[name: string, shape: number[]]>, expected: Expected): Promise<void> {
  const model = await compileOnnxModel(gpu, bytes, { precision: 'fp32', isolate: false });
  try {
    expect(model.stepLabels).toEqual(expected.steps);
    expect(model.stepCount).toBe(expected.steps.length);
    expect(model.fused).toEqual(expected.fused);
    for (let round = 0; round < 2; round++) {
      await expectMatchesOrt(model, bytes, new Map(inputs.map(([name, shape]) => [name, randomTensor(shape, 2)])));
    }
  } finally {
    model.dispose();
  }
}

/** Conv 3×3 (pads 1) with random weights (and bias) from `input` (C_in channels) to `output`. */
function conv(
  graph: GraphBuilder, name: string, input: string, output: string, inChannels: number, outChannels: number, group = 1, bias = true,
): GraphBuilder {
  const fanIn = (inChannels / group) * 9;
  const inputs = [input, weight(graph, `${name}.w`, randomTensor([outChannels, inChannels / group, 3, 3], Math.sqrt(3 / fanIn)))];
  if (bias) inputs.push(weight(graph, `${name}.b`, randomTensor([outChannels], 0.5)));
  return graph.node('Conv', inputs, [output], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], ...(group > 1 ? { group } : {}) }, name);
}

/** BatchNormalization with random statistics (positive variances). */
function batchNorm(graph: GraphBuilder, name: string, input: string, output: string, channels: number): GraphBuilder {
  const statistics = [
    weight(graph, `${name}.scale`, between([channels], 0.5, 1.5)),
    weight(graph, `${name}.shift`, randomTensor([channels], 0.5)),
    weight(graph, `${name}.mean`, randomTensor([channels], 0.5)),
    weight(graph, `${name}.var`, between([channels], 0.3, 2)),
  ];
  return graph.node('BatchNormalization', [input, ...statistics], [output], { epsilon: float(1e-3) }, name);
}

describe('chains that fuse', () => {
  it('Conv → BatchNormalization → Relu: the BN folded into the weights, the Relu in the epilogue', () => {
    const graph = new GraphBuilder('conv_bn_relu').input('x', 'FP32', [2, 5, 11, 9]);
    conv(graph, 'conv', 'x', 'c', 5, 7);
    batchNorm(graph, 'bn', 'c', 'n', 7);
    graph.node('Relu', ['n'], ['y'], {}, 'relu').output('y', 'FP32', [2, 7, 11, 9]);
    return checkFusion(graph.toBytes(), [['x', [2, 5, 11, 9]]], {
      steps: ["Conv 'conv' + Relu 'relu'"],
      fused: ["BatchNormalization 'bn' into Conv 'conv'", "Relu 'relu' into Conv 'conv'"],
    });
  });

  it('MatMul → Add(bias) → Gelu on 3-D activations', () => {
    const graph = new GraphBuilder('matmul_add_gelu').input('x', 'FP32', [3, 7, 20]);
    const w = weight(graph, 'w', randomTensor([20, 33], Math.sqrt(3 / 20)));
    const b = weight(graph, 'b', randomTensor([33], 0.5));
    graph.node('MatMul', ['x', w], ['p'], {}, 'matmul')
      .node('Add', ['p', b], ['s'], {}, 'bias')
      .node('Gelu', ['s'], ['y'], {}, 'gelu')
      .output('y', 'FP32', [3, 7, 33]);
    return checkFusion(graph.toBytes({ opset: 20 }), [['x', [3, 7, 20]]], {
      steps: ["MatMul 'matmul' + Add 'bias' + Gelu 'gelu'"],
      fused: ["Add 'bias' into MatMul 'matmul'", "Gelu 'gelu' into MatMul 'matmul'"],
    });
  });

  it('MatMul → Add(bias, as the first operand) → Gelu(approximate tanh)', () => {
    const graph = new GraphBuilder('matmul_add_gelu_tanh').input('x', 'FP32', [9, 16]);
    const w = weight(graph, 'w', randomTensor([16, 10], Math.sqrt(3 / 16)));
    const b = weight(graph, 'b', randomTensor([1, 10], 0.5));
    graph.node('MatMul', ['x', w], ['p'], {}, 'matmul')
      .node('Add', [b, 'p'], ['s'], {}, 'bias')
      .node('Gelu', ['s'], ['y'], { approximate: 'tanh' }, 'gelu')
      .output('y', 'FP32', [9, 10]);
    return checkFusion(graph.toBytes({ opset: 20 }), [['x', [9, 16]]], {
      steps: ["MatMul 'matmul' + Add 'bias' + Gelu 'gelu'"],
      fused: ["Add 'bias' into MatMul 'matmul'", "Gelu 'gelu' into MatMul 'matmul'"],
    });
  });

  it('Conv → Add(residual: the block input) → Relu', () => {
    const graph = new GraphBuilder('conv_residual_relu').input('x', 'FP32', [2, 6, 9, 10]);
    conv(graph, 'conv', 'x', 'c', 6, 6);
    graph.node('Add', ['c', 'x'], ['s'], {}, 'residual')
      .node('Relu', ['s'], ['y'], {}, 'relu')
      .output('y', 'FP32', [2, 6, 9, 10]);
    return checkFusion(graph.toBytes(), [['x', [2, 6, 9, 10]]], {
      steps: ["Conv 'conv' + Add 'residual' + Relu 'relu'"],
      fused: ["Add 'residual' into Conv 'conv'", "Relu 'relu' into Conv 'conv'"],
    });
  });

  // Fused values are appended after the node's inputs, so without a bias of its own the
  // residual takes input slot 2, where a Conv's bias would be.
  it('Conv without bias → Add(residual) → Relu', () => {
    const graph = new GraphBuilder('conv_no_bias_residual').input('x', 'FP32', [1, 5, 8, 11]);
    conv(graph, 'conv', 'x', 'c', 5, 5, 1, false);
    graph.node('Add', ['x', 'c'], ['s'], {}, 'residual')
      .node('Relu', ['s'], ['y'], {}, 'relu')
      .output('y', 'FP32', [1, 5, 8, 11]);
    return checkFusion(graph.toBytes(), [['x', [1, 5, 8, 11]]], {
      steps: ["Conv 'conv' + Add 'residual' + Relu 'relu'"],
      fused: ["Add 'residual' into Conv 'conv'", "Relu 'relu' into Conv 'conv'"],
    });
  });

  it('Conv without bias → Add(per-channel constant [C, 1, 1]) → Add(residual) → Sigmoid', () => {
    const graph = new GraphBuilder('conv_channel_bias_residual').input('x', 'FP32', [2, 4, 6, 5]);
    conv(graph, 'conv', 'x', 'c', 4, 4, 1, false);
    const b = weight(graph, 'b', randomTensor([4, 1, 1], 0.5));
    graph.node('Add', ['c', b], ['biased'], {}, 'bias')
      .node('Add', ['biased', 'x'], ['s'], {}, 'residual')
      .node('Sigmoid', ['s'], ['y'], {}, 'sigmoid')
      .output('y', 'FP32', [2, 4, 6, 5]);
    return checkFusion(graph.toBytes(), [['x', [2, 4, 6, 5]]], {
      steps: ["Conv 'conv' + Add 'bias' + Add 'residual' + Sigmoid 'sigmoid'"],
      fused: ["Add 'bias' into Conv 'conv'", "Add 'residual' into Conv 'conv'", "Sigmoid 'sigmoid' into Conv 'conv'"],
    });
  });

  it('Conv with its own bias → Add(constant [1, C, 1, 1]): the two biases summed', () => {
    const graph = new GraphBuilder('conv_two_biases').input('x', 'FP32', [2, 3, 6, 7]);
    conv(graph, 'conv', 'x', 'c', 3, 5);
    const b = weight(graph, 'extra', randomTensor([1, 5, 1, 1], 0.5));
    graph.node('Add', ['c', b], ['y'], {}, 'bias').output('y', 'FP32', [2, 5, 6, 7]);
    return checkFusion(graph.toBytes(), [['x', [2, 3, 6, 7]]], {
      steps: ["Conv 'conv' + Add 'bias'"],
      fused: ["Add 'bias' into Conv 'conv'"],
    });
  });

  it('MatMul → Add(a constant of the output\'s shape, fused as a residual) → Tanh', () => {
    const graph = new GraphBuilder('matmul_constant_residual').input('x', 'FP32', [4, 6]);
    const w = weight(graph, 'w', randomTensor([6, 5], Math.sqrt(3 / 6)));
    const offsets = weight(graph, 'offsets', randomTensor([4, 5], 1));
    graph.node('MatMul', ['x', w], ['p'], {}, 'matmul')
      .node('Add', ['p', offsets], ['s'], {}, 'offsets')
      .node('Tanh', ['s'], ['y'], {}, 'tanh')
      .output('y', 'FP32', [4, 5]);
    return checkFusion(graph.toBytes(), [['x', [4, 6]]], {
      steps: ["MatMul 'matmul' + Add 'offsets' + Tanh 'tanh'"],
      fused: ["Add 'offsets' into MatMul 'matmul'", "Tanh 'tanh' into MatMul 'matmul'"],
    });
  });

  it('depthwise Conv → BatchNormalization → Add(residual) → Relu', () => {
    const graph = new GraphBuilder('depthwise_bn_residual_relu').input('x', 'FP32', [1, 8, 7, 13]);
    conv(graph, 'conv', 'x', 'c', 8, 8, 8);
    batchNorm(graph, 'bn', 'c', 'n', 8);
    graph.node('Add', ['x', 'n'], ['s'], {}, 'residual')
      .node('Relu', ['s'], ['y'], {}, 'relu')
      .output('y', 'FP32', [1, 8, 7, 13]);
    return checkFusion(graph.toBytes(), [['x', [1, 8, 7, 13]]], {
      steps: ["Conv 'conv' + Add 'residual' + Relu 'relu'"],
      fused: ["BatchNormalization 'bn' into Conv 'conv'", "Add 'residual' into Conv 'conv'", "Relu 'relu' into Conv 'conv'"],
    });
  });

  it('ConvTranspose (stride 2, bias) → LeakyRelu', () => {
    const graph = new GraphBuilder('conv_transpose_leaky').input('x', 'FP32', [1, 4, 5, 6]);
    const w = weight(graph, 'w', randomTensor([4, 3, 3, 3], 0.5));
    const b = weight(graph, 'b', randomTensor([3], 0.5));
    graph.node('ConvTranspose', ['x', w, b], ['t'], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, 'deconv')
      .node('LeakyRelu', ['t'], ['y'], { alpha: float(0.2) }, 'leaky')
      .output('y', 'FP32', [1, 3, 9, 11]);
    return checkFusion(graph.toBytes(), [['x', [1, 4, 5, 6]]], {
      steps: ["ConvTranspose 'deconv' + LeakyRelu 'leaky'"],
      fused: ["LeakyRelu 'leaky' into ConvTranspose 'deconv'"],
    });
  });

  it('BatchNormalization of a graph input (nothing to fold into) → HardSwish', () => {
    const graph = new GraphBuilder('bn_hardswish').input('x', 'FP32', [2, 6, 5, 7]);
    batchNorm(graph, 'bn', 'x', 'n', 6);
    graph.node('HardSwish', ['n'], ['y'], {}, 'hardswish').output('y', 'FP32', [2, 6, 5, 7]);
    return checkFusion(graph.toBytes(), [['x', [2, 6, 5, 7]]], {
      steps: ["BatchNormalization 'bn' + HardSwish 'hardswish'"],
      fused: ["HardSwish 'hardswish' into BatchNormalization 'bn'"],
    });
  });

  it('Gemm (transB, C) → Clip(0, 6) with the bounds as initializers', () => {
    const graph = new GraphBuilder('gemm_clip').input('x', 'FP32', [5, 17]);
    const w = weight(graph, 'w', randomTensor([12, 17], Math.sqrt(3 / 17)));
    const c = weight(graph, 'c', randomTensor([12], 0.5));
    graph.initializer('low', 'FP32', [], Float32Array.of(0)).initializer('high', 'FP32', [], Float32Array.of(6))
      .node('Gemm', ['x', w, c], ['g'], { transB: 1, alpha: float(4) }, 'gemm')
      .node('Clip', ['g', 'low', 'high'], ['y'], {}, 'clip')
      .output('y', 'FP32', [5, 12]);
    // alpha 4 pushes many outputs past 6, so both bounds bite.
    return checkFusion(graph.toBytes(), [['x', [5, 17]]], {
      steps: ["Gemm 'gemm' + Clip 'clip'"],
      fused: ["Clip 'clip' into Gemm 'gemm'"],
    });
  });

  it('Gemm (no C) → Add(bias) → Add(residual) → Clip with only a max (min omitted)', () => {
    const graph = new GraphBuilder('gemm_bias_residual_clip').input('x', 'FP32', [6, 11]).input('skip', 'FP32', [6, 11]);
    const w = weight(graph, 'w', randomTensor([11, 11], Math.sqrt(3 / 11)));
    const b = weight(graph, 'b', randomTensor([11], 0.5));
    graph.initializer('high', 'FP32', [], Float32Array.of(0.75))
      .node('Gemm', ['x', w], ['g'], {}, 'gemm')
      .node('Add', ['g', b], ['biased'], {}, 'bias')
      .node('Add', ['skip', 'biased'], ['s'], {}, 'residual')
      .node('Clip', ['s', '', 'high'], ['y'], {}, 'clip')
      .output('y', 'FP32', [6, 11]);
    return checkFusion(graph.toBytes(), [['x', [6, 11]], ['skip', [6, 11]]], {
      steps: ["Gemm 'gemm' + Add 'bias' + Add 'residual' + Clip 'clip'"],
      fused: ["Add 'bias' into Gemm 'gemm'", "Add 'residual' into Gemm 'gemm'", "Clip 'clip' into Gemm 'gemm'"],
    });
  });

  it('MatMul → Div(scalar constant) → Softmax: attention scores, the scale in the softmax kernel', () => {
    const graph = new GraphBuilder('scaled_softmax').input('q', 'FP32', [2, 4, 13, 16]).input('k', 'FP32', [2, 4, 16, 13]);
    graph.initializer('scale', 'FP32', [], Float32Array.of(4))
      .node('MatMul', ['q', 'k'], ['scores'], {}, 'scores')
      .node('Div', ['scores', 'scale'], ['scaled'], {}, 'divide')
      .node('Softmax', ['scaled'], ['y'], { axis: -1 }, 'softmax')
      .output('y', 'FP32', [2, 4, 13, 13]);
    return checkFusion(graph.toBytes(), [['q', [2, 4, 13, 16]], ['k', [2, 4, 16, 13]]], {
      steps: ["MatMul 'scores'", "Div 'divide' + Softmax 'softmax'"],
      fused: ["Div 'divide' into Softmax 'softmax'"],
    });
  });

  it('Mul(negative constant [1], as the first operand) → LogSoftmax along a strided axis', () => {
    const graph = new GraphBuilder('scaled_log_softmax').input('x', 'FP32', [3, 9, 5]);
    graph.initializer('factor', 'FP32', [1], Float32Array.of(-1.7))
      .node('Mul', ['factor', 'x'], ['scaled'], {}, 'multiply')
      .node('LogSoftmax', ['scaled'], ['y'], { axis: 1 }, 'log_softmax')
      .output('y', 'FP32', [3, 9, 5]);
    return checkFusion(graph.toBytes(), [['x', [3, 9, 5]]], {
      steps: ["Mul 'multiply' + LogSoftmax 'log_softmax'"],
      fused: ["Mul 'multiply' into LogSoftmax 'log_softmax'"],
    });
  });

  it('Transpose(0, 2, 1, 3) → MatMul A and Transpose(0, 2, 3, 1) → MatMul B: attention scores read the heads in place', () => {
    const graph = new GraphBuilder('transposed_scores').input('q', 'FP32', [2, 13, 4, 16]).input('k', 'FP32', [2, 13, 4, 16]);
    graph.initializer('scale', 'FP32', [], Float32Array.of(4))
      .node('Transpose', ['q'], ['q_heads'], { perm: [0, 2, 1, 3] }, 'q_heads')
      .node('Transpose', ['k'], ['k_heads'], { perm: [0, 2, 3, 1] }, 'k_heads')
      .node('MatMul', ['q_heads', 'k_heads'], ['scores'], {}, 'scores')
      .node('Div', ['scores', 'scale'], ['scaled'], {}, 'divide')
      .node('Softmax', ['scaled'], ['y'], { axis: -1 }, 'softmax')
      .output('y', 'FP32', [2, 4, 13, 13]);
    return checkFusion(graph.toBytes(), [['q', [2, 13, 4, 16]], ['k', [2, 13, 4, 16]]], {
      steps: ["Transpose 'q_heads' + Transpose 'k_heads' + MatMul 'scores'", "Div 'divide' + Softmax 'softmax'"],
      fused: ["Div 'divide' into Softmax 'softmax'", "Transpose 'q_heads' into MatMul 'scores'", "Transpose 'k_heads' into MatMul 'scores'"],
    });
  });

  it('Transpose(0, 2, 1, 3) → MatMul B: attention probabilities times the value heads', () => {
    const graph = new GraphBuilder('transposed_values').input('p', 'FP32', [3, 2, 9, 9]).input('v', 'FP32', [3, 9, 2, 10]);
    graph.node('Transpose', ['v'], ['v_heads'], { perm: [0, 2, 1, 3] }, 'v_heads')
      .node('MatMul', ['p', 'v_heads'], ['y'], {}, 'context')
      .output('y', 'FP32', [3, 2, 9, 10]);
    return checkFusion(graph.toBytes(), [['p', [3, 2, 9, 9]], ['v', [3, 9, 2, 10]]], {
      steps: ["Transpose 'v_heads' + MatMul 'context'"],
      fused: ["Transpose 'v_heads' into MatMul 'context'"],
    });
  });

  // The batches of A, one after another, would look packed (batch stride M * K) although each
  // one is read transposed: the product must not become one of batch * M rows.
  it('Transpose(0, 2, 1) → MatMul A with constant weights → Add(bias) → Relu', () => {
    const graph = new GraphBuilder('transposed_dense').input('x', 'FP32', [3, 6, 4]);
    const w = weight(graph, 'w', randomTensor([6, 5], Math.sqrt(3 / 6)));
    const b = weight(graph, 'b', randomTensor([5], 0.5));
    graph.node('Transpose', ['x'], ['xt'], { perm: [0, 2, 1] }, 'xt')
      .node('MatMul', ['xt', w], ['p'], {}, 'matmul')
      .node('Add', ['p', b], ['s'], {}, 'bias')
      .node('Relu', ['s'], ['y'], {}, 'relu')
      .output('y', 'FP32', [3, 4, 5]);
    return checkFusion(graph.toBytes(), [['x', [3, 6, 4]]], {
      steps: ["Transpose 'xt' + MatMul 'matmul' + Add 'bias' + Relu 'relu'"],
      fused: ["Add 'bias' into MatMul 'matmul'", "Relu 'relu' into MatMul 'matmul'", "Transpose 'xt' into MatMul 'matmul'"],
    });
  });

  it('Transpose(1, 3, 2, 0) → MatMul B: batch, row and column dims all moved, A broadcast over a batch dim', () => {
    const graph = new GraphBuilder('transposed_scrambled').input('a', 'FP32', [3, 5, 8]).input('w', 'FP32', [6, 2, 8, 3]);
    graph.node('Transpose', ['w'], ['wt'], { perm: [1, 3, 2, 0] }, 'wt')
      .node('MatMul', ['a', 'wt'], ['y'], {}, 'matmul')
      .output('y', 'FP32', [2, 3, 5, 6]);
    return checkFusion(graph.toBytes(), [['a', [3, 5, 8]], ['w', [6, 2, 8, 3]]], {
      steps: ["Transpose 'wt' + MatMul 'matmul'"],
      fused: ["Transpose 'wt' into MatMul 'matmul'"],
    });
  });
});

describe('chains that must not fuse', () => {
  it('a Conv output read twice (by the BN and by an Add) keeps its BN and Relu apart', () => {
    const graph = new GraphBuilder('conv_read_twice').input('x', 'FP32', [1, 4, 9, 8]);
    conv(graph, 'conv', 'x', 'c', 4, 6);
    batchNorm(graph, 'bn', 'c', 'n', 6);
    graph.node('Relu', ['n'], ['r'], {}, 'relu')
      .node('Add', ['r', 'c'], ['y'], {}, 'sum')
      .output('y', 'FP32', [1, 6, 9, 8]);
    // The BN cannot fold (the Add needs the unnormalized Conv output), so it runs as its own
    // step with the Relu fused into it; the Add then has two device operands of one shape.
    return checkFusion(graph.toBytes(), [['x', [1, 4, 9, 8]]], {
      steps: ["Conv 'conv'", "BatchNormalization 'bn' + Relu 'relu'", "Add 'sum'"],
      fused: ["Relu 'relu' into BatchNormalization 'bn'"],
    });
  });

  it('a Conv output that is also a graph output keeps its BN', () => {
    const graph = new GraphBuilder('conv_output').input('x', 'FP32', [2, 3, 7, 7]);
    conv(graph, 'conv', 'x', 'c', 3, 5);
    batchNorm(graph, 'bn', 'c', 'y', 5);
    graph.output('y', 'FP32', [2, 5, 7, 7]).output('c', 'FP32', [2, 5, 7, 7]);
    return checkFusion(graph.toBytes(), [['x', [2, 3, 7, 7]]], {
      steps: ["Conv 'conv'", "BatchNormalization 'bn'"],
      fused: [],
    });
  });

  it('MatMul → Add → Gelu with the pre-activation a graph output: the bias fuses, the Gelu does not', () => {
    const graph = new GraphBuilder('preactivation_output').input('x', 'FP32', [4, 12]);
    const w = weight(graph, 'w', randomTensor([12, 9], Math.sqrt(3 / 12)));
    const b = weight(graph, 'b', randomTensor([9], 0.5));
    graph.node('MatMul', ['x', w], ['p'], {}, 'matmul')
      .node('Add', ['p', b], ['s'], {}, 'bias')
      .node('Gelu', ['s'], ['y'], {}, 'gelu')
      .output('y', 'FP32', [4, 9]).output('s', 'FP32', [4, 9]);
    return checkFusion(graph.toBytes({ opset: 20 }), [['x', [4, 12]]], {
      steps: ["MatMul 'matmul' + Add 'bias'", "Gelu 'gelu'"],
      fused: ["Add 'bias' into MatMul 'matmul'"],
    });
  });

  it('a MatMul product read by two nodes stays unfused', () => {
    const graph = new GraphBuilder('product_read_twice').input('x', 'FP32', [5, 8]);
    const w = weight(graph, 'w', randomTensor([8, 6], Math.sqrt(3 / 8)));
    const b = weight(graph, 'b', randomTensor([6], 0.5));
    graph.node('MatMul', ['x', w], ['p'], {}, 'matmul')
      .node('Add', ['p', b], ['s'], {}, 'bias')
      .node('Relu', ['p'], ['r'], {}, 'relu')
      .node('Mul', ['s', 'r'], ['y'], {}, 'product')
      .output('y', 'FP32', [5, 6]);
    return checkFusion(graph.toBytes(), [['x', [5, 8]]], {
      steps: ["MatMul 'matmul'", "Add 'bias'", "Relu 'relu'", "Mul 'product'"],
      fused: [],
    });
  });

  it('an Add of a broadcast tensor is not a residual (shapes differ) and stays apart', () => {
    const graph = new GraphBuilder('broadcast_add').input('x', 'FP32', [7, 10]).input('row', 'FP32', [1, 5]);
    const w = weight(graph, 'w', randomTensor([10, 5], Math.sqrt(3 / 10)));
    graph.node('MatMul', ['x', w], ['p'], {}, 'matmul')
      .node('Add', ['p', 'row'], ['s'], {}, 'add_row')
      .node('Relu', ['s'], ['y'], {}, 'relu')
      .output('y', 'FP32', [7, 5]);
    // The Add (a binary op) takes the Relu instead.
    return checkFusion(graph.toBytes(), [['x', [7, 10]], ['row', [1, 5]]], {
      steps: ["MatMul 'matmul'", "Add 'add_row' + Relu 'relu'"],
      fused: ["Relu 'relu' into Add 'add_row'"],
    });
  });

  it('a Div whose quotient is also a graph output stays apart from its Softmax', () => {
    const graph = new GraphBuilder('scaled_output').input('x', 'FP32', [4, 11]);
    graph.initializer('scale', 'FP32', [], Float32Array.of(2.5))
      .node('Div', ['x', 'scale'], ['scaled'], {}, 'divide')
      .node('Softmax', ['scaled'], ['y'], {}, 'softmax')
      .output('y', 'FP32', [4, 11]).output('scaled', 'FP32', [4, 11]);
    return checkFusion(graph.toBytes(), [['x', [4, 11]]], {
      steps: ["Div 'divide'", "Softmax 'softmax'"],
      fused: [],
    });
  });

  it('a Div by a run-time tensor, and a constant that adds dims (moving an opset-11 axis), stay apart', () => {
    const graph = new GraphBuilder('unscalable').input('x', 'FP32', [3, 5]).input('d', 'FP32', [1]);
    graph.initializer('wide', 'FP32', [1, 1, 1], Float32Array.of(0.5))
      .node('Div', ['x', 'd'], ['by_tensor'], {}, 'by_tensor')
      .node('Softmax', ['by_tensor'], ['a'], { axis: 1 }, 'softmax_a')
      .node('Mul', ['x', 'wide'], ['widened'], {}, 'widen')
      .node('Softmax', ['widened'], ['b'], { axis: 1 }, 'softmax_b')
      .output('a', 'FP32', [3, 5]).output('b', 'FP32', [1, 3, 5]);
    return checkFusion(graph.toBytes({ opset: 11 }), [['x', [3, 5]], ['d', [1]]], {
      // Nodes run in topological order, the file's order among those ready.
      steps: ["Div 'by_tensor'", "Mul 'widen'", "Softmax 'softmax_a'", "Softmax 'softmax_b'"],
      fused: [],
    });
  });

  it('a Transpose read twice (by a MatMul and a Relu), and one that is a graph output, stay their own steps', () => {
    const graph = new GraphBuilder('transpose_read_twice').input('x', 'FP32', [2, 7, 5]).input('b', 'FP32', [2, 7, 3]);
    graph.node('Transpose', ['x'], ['xt'], { perm: [0, 2, 1] }, 'xt')
      .node('MatMul', ['xt', 'b'], ['p'], {}, 'matmul')
      .node('Relu', ['xt'], ['r'], {}, 'relu')
      .node('Transpose', ['b'], ['bt'], { perm: [0, 2, 1] }, 'bt')
      .node('MatMul', ['bt', 'x'], ['q'], {}, 'matmul_out')
      .output('p', 'FP32', [2, 5, 3]).output('r', 'FP32', [2, 5, 7]).output('q', 'FP32', [2, 3, 5]).output('bt', 'FP32', [2, 3, 7]);
    return checkFusion(graph.toBytes(), [['x', [2, 7, 5]], ['b', [2, 7, 3]]], {
      // Nodes run in topological order, the file's order among those ready.
      steps: ["Transpose 'xt'", "Transpose 'bt'", "MatMul 'matmul'", "Relu 'relu'", "MatMul 'matmul_out'"],
      fused: [],
    });
  });
});
