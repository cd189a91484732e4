/**
 * The ai.onnx.preview.training optimizers (Momentum standard and Nesterov, Adam, Adagrad) on
 * fresh random inputs. onnxruntime's CPU build does not register this domain, so the reference
 * is ONNX's own definition (onnx/backend/test/case/node/{momentum,adam,adagrad}.py) written out
 * here in float64: one and two tensors per node, T = 0 (no bias correction / full gradient) and
 * T > 0, every attribute, inputs computed on the GPU and outputs read by GPU nodes. Then the
 * refusals of malformed nodes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { compileError } from '../numerics/one-node.ts';
import { expectClose, randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const DOMAIN = 'ai.onnx.preview.training';

type Optimizer = 'Momentum' | 'Adam' | 'Adagrad';
const STATES: Record<Optimizer, string[]> = { Momentum: ['V'], Adam: ['V', 'H'], Adagrad: ['H'] };

interface Attributes {
  alpha?: number; beta?: number; epsilon?: number; norm_coefficient?: number; norm_coefficient_post?: number; decay_factor?: number; mode?: string;
}

/** ONNX's reference update of one tensor: [x_new, ...states_new] as float64 arrays. */
function reference(op: Optimizer, a: Attributes, r: number, t: number, x: ArrayLike<number>, g: ArrayLike<number>, states: ArrayLike<number>[]): Float64Array[] {
  const out = [x, ...states].map(() => new Float64Array(x.length));
  for (let i = 0; i < x.length; i++) {
    const gReg = (a.norm_coefficient ?? 0) * x[i] + g[i];
    if (op === 'Momentum') {
      const betaAdjusted = t > 0 ? a.beta! : 1;
      const vNew = a.alpha! * states[0][i] + betaAdjusted * gReg;
      out[0][i] = a.mode === 'nesterov' ? x[i] - r * (gReg + a.alpha! * vNew) : x[i] - r * vNew;
      out[1][i] = vNew;
    } else if (op === 'Adam') {
      const [alpha, beta, epsilon] = [a.alpha ?? 0.9, a.beta ?? 0.999, a.epsilon ?? 1e-6];
      const vNew = alpha * states[0][i] + (1 - alpha) * gReg;
      const hNew = beta * states[1][i] + (1 - beta) * (gReg * gReg);
      const hSqrt = Math.sqrt(hNew) + epsilon;
      const rAdjusted = t > 0 ? (r * Math.sqrt(1 - beta ** t)) / (1 - alpha ** t) : r;
      out[0][i] = (1 - (a.norm_coefficient_post ?? 0)) * (x[i] - rAdjusted * (vNew / hSqrt));
      out[1][i] = vNew;
      out[2][i] = hNew;
    } else {
      const rAdjusted = r / (1 + t * (a.decay_factor ?? 0));
      const hNew = states[0][i] + gReg * gReg;
      out[0][i] = x[i] - (rAdjusted * gReg) / (Math.sqrt(hNew) + (a.epsilon ?? 1e-6));
      out[1][i] = hNew;
    }
  }
  return out;
}

/** R, T, then X_i, G_i and each state's tensors; outputs X_i_new, then each state's new tensors. */
function optimizerModel(op: Optimizer, shapes: number[][], attributes: Attributes, onGpu: boolean): { bytes: Uint8Array; inputs: string[]; outputs: string[] } {
  const graph = new GraphBuilder(op.toLowerCase()).input('R', 'FP32', []).input('T', 'INT64', []);
  const groups = ['X', 'G', ...STATES[op]];
  const inputs = groups.flatMap((group) => shapes.map((_, index) => `${group}${index}`));
  groups.forEach((group) => shapes.forEach((shape, index) => graph.input(`${group}${index}`, 'FP32', shape)));
  const nodeInputs = inputs.map((name) => {
    if (!onGpu || !name.startsWith('X')) return name;
    graph.node('Neg', [name], [`${name}_neg`]).node('Neg', [`${name}_neg`], [`${name}_gpu`]);
    return `${name}_gpu`;
  });
  const outputs = ['X', ...STATES[op]].flatMap((group) => shapes.map((_, index) => `${group}${index}_new`));
  graph.node(op, ['R', 'T', ...nodeInputs], outputs.map((name) => (onGpu ? `${name}_host` : name)), attributes as Record<string, AttributeValue>, `${op.toLowerCase()}_under_test`, DOMAIN);
  if (onGpu) for (const name of outputs) graph.node('Identity', [`${name}_host`], [name]);
  outputs.forEach((name, index) => graph.output(name, 'FP32', shapes[index % shapes.length]));
  return { bytes: graph.toBytes({ opset: 13 }), inputs, outputs };
}

async function checkOptimizer(op: Optimizer, shapes: number[][], attributes: Attributes, t: number, onGpu = false): Promise<void> {
  const { bytes, inputs, outputs } = optimizerModel(op, shapes, attributes, onGpu);
  const model = await compileOnnxModel(gpu, bytes, { isolate: false });
  try {
    for (let round = 0; round < 2; round++) {
      const r = 0.05 + Math.random() * 0.1;
      const feeds = new Map<string, HostTensor>([['R', { datatype: 'FP32', shape: [], data: Float32Array.of(r) }], ['T', { datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(t)) }]]);
      for (const name of inputs) {
        const shape = shapes[Number(name.slice(1))];
        // Adagrad's and Adam's H accumulate squares: non-negative.
        feeds.set(name, name.startsWith('H') ? { ...randomTensor(shape), data: (randomTensor(shape).data as Float32Array).map(Math.abs) } : randomTensor(shape));
      }
      const { outputs: ours } = await model.run(feeds);
      const groupCount = 1 + STATES[op].length;
      shapes.forEach((shape, index) => {
        const values = (group: string) => feeds.get(`${group}${index}`)!.data as Float32Array;
        const expected = reference(op, attributes, Float32Array.of(r)[0], t, values('X'), values('G'), STATES[op].map(values));
        for (let group = 0; group < groupCount; group++) {
          const name = outputs[group * shapes.length + index];
          expectClose(name, ours.get(name), { datatype: 'FP32', shape, data: Float32Array.from(expected[group]) });
        }
      });
    }
  } finally {
    model.dispose();
  }
}

const MOMENTUM: Attributes = { alpha: 0.9, beta: 0.3, norm_coefficient: 0.02, mode: 'standard' };

describe('Momentum', () => {
  it.each([0, 1, 7])('standard, T = %i, one tensor of [3, 5]', (t) => checkOptimizer('Momentum', [[3, 5]], MOMENTUM, t));
  it.each([0, 4])('nesterov, T = %i, tensors of [7] and [2, 3, 4]', (t) => checkOptimizer('Momentum', [[7], [2, 3, 4]], { ...MOMENTUM, mode: 'nesterov' }, t));
  it('X computed on the GPU, outputs read by GPU nodes', () => checkOptimizer('Momentum', [[5, 3], [11]], MOMENTUM, 2, true));
});

describe('Adam', () => {
  it.each([0, 1, 5])('defaults, T = %i, one tensor of [9]', (t) => checkOptimizer('Adam', [[9]], {}, t));
  it('every attribute, tensors of [3, 5] and [2, 7]', () =>
    checkOptimizer('Adam', [[3, 5], [2, 7]], { alpha: 0.85, beta: 0.95, epsilon: 1e-3, norm_coefficient: 0.01, norm_coefficient_post: 0.05 }, 3));
  it('X computed on the GPU, outputs read by GPU nodes', () => checkOptimizer('Adam', [[4, 6]], { alpha: 0.8 }, 2, true));
});

describe('Adagrad', () => {
  it.each([0, 3])('defaults, T = %i, one tensor of [6, 5]', (t) => checkOptimizer('Adagrad', [[6, 5]], {}, t));
  it('decay_factor, epsilon, norm_coefficient, tensors of [13] and [3, 2, 3]', () =>
    checkOptimizer('Adagrad', [[13], [3, 2, 3]], { decay_factor: 0.1, epsilon: 1e-4, norm_coefficient: 0.003 }, 5));
  it('X computed on the GPU, outputs read by GPU nodes', () => checkOptimizer('Adagrad', [[7, 3]], { decay_factor: 0.2 }, 1, true));
});

describe('refusals', () => {
  const nodeModel = (op: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue>) => {
    const graph = new GraphBuilder('bad').input('R', 'FP32', []).input('T', 'INT64', []);
    for (const name of inputs.slice(2)) graph.input(name, 'FP32', [3]);
    graph.node(op, inputs, outputs, attributes, 'bad_optimizer', DOMAIN);
    for (const name of outputs) graph.output(name, 'FP32', [3]);
    return graph.toBytes({ opset: 13 });
  };
  const refusal = async (bytes: Uint8Array, detail: string) => {
    const error = await compileError(gpu, bytes);
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain(detail);
  };
  it('inputs that are not R, T and three per tensor', () =>
    refusal(nodeModel('Momentum', ['R', 'T', 'X', 'G', 'V', 'X2'], ['Xn', 'Vn'], { ...MOMENTUM }), 'has 6 inputs; it takes R, T and 3 inputs per optimized tensor'));
  it('outputs that do not match the tensors', async () => {
    await refusal(nodeModel('Adam', ['R', 'T', 'X', 'G', 'V', 'H'], ['Xn', 'Vn'], {}), 'has 2 outputs');
    await refusal(nodeModel('Adagrad', ['R', 'T', 'X', 'G', 'H'], ['Xn', 'Hn', 'extra'], {}), 'has 3 outputs; 1 optimized tensors give 2');
  });
  it("Momentum without its required 'mode'", () =>
    refusal(nodeModel('Momentum', ['R', 'T', 'X', 'G', 'V'], ['Xn', 'Vn'], { alpha: 0.9, beta: 0.1, norm_coefficient: 0 }), "needs attribute 'mode'"));
  it('a mode ONNX does not define', () =>
    refusal(nodeModel('Momentum', ['R', 'T', 'X', 'G', 'V'], ['Xn', 'Vn'], { ...MOMENTUM, mode: 'heavy_ball' }), "mode='heavy_ball'"));
  it('another operator of the domain', () =>
    refusal(nodeModel('Gradient', ['R', 'T', 'X'], ['dX'], {}), "operator 'ai.onnx.preview.training.Gradient' (node 'bad_optimizer') is not supported"));
});
