/**
 * RNN, GRU and LSTM against onnxruntime on fresh random inputs: every direction, both layouts
 * (opset 14), opsets 7 and 22, a batch above one and sizes that are no multiple of a workgroup,
 * initial_h / initial_c, sequence_lens of different lengths, peepholes, input_forget,
 * linear_before_reset, clip, non-default activations with alpha / beta, every output, and
 * Y_h asked for alone (Y unnamed), the projection on both GEMM algorithms, fp16 storage. Invalid nodes and shapes are refused naming
 * what is wrong.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { float, floats, GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { compileError } from '../numerics/one-node.ts';
import { expectClose, expectCloseFp16, randomTensor, runOrt } from '../numerics/ort-reference.ts';
import { checkRuns } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

type Cell = 'RNN' | 'GRU' | 'LSTM';
const GATES: Record<Cell, number> = { RNN: 1, GRU: 3, LSTM: 4 };

interface RecurrentCase {
  cell: Cell;
  direction?: 'forward' | 'reverse' | 'bidirectional';
  timeSteps: number;
  batch: number;
  inputSize: number;
  hidden: number;
  layout?: 0 | 1;
  opset?: number;
  bias?: boolean;
  initial?: boolean;
  /** Lengths per batch row (sequence_lens). */
  lengths?: number[];
  peepholes?: boolean;
  /** Outputs to name; the others stay ''. Default all. */
  outputs?: Array<'Y' | 'Y_h' | 'Y_c'>;
  attributes?: Record<string, AttributeValue>;
}


/** The model and a fresh input set for `testCase`. */
function recurrentModel(testCase: RecurrentCase): { bytes: Uint8Array; inputs: () => Map<string, HostTensor> } {
  const { cell, timeSteps: t, batch: b, inputSize, hidden: h } = testCase;
  const directions = testCase.direction === 'bidirectional' ? 2 : 1;
  const gates = GATES[cell];
  const batchFirst = testCase.layout === 1;
  const shapes: Record<string, number[]> = {
    X: batchFirst ? [b, t, inputSize] : [t, b, inputSize],
    W: [directions, gates * h, inputSize], R: [directions, gates * h, h], B: [directions, 2 * gates * h],
    sequence_lens: [b], initial_h: batchFirst ? [b, directions, h] : [directions, b, h], P: [directions, 3 * h],
  };
  shapes.initial_c = shapes.initial_h;
  const present: Record<string, boolean> = {
    X: true, W: true, R: true, B: Boolean(testCase.bias), sequence_lens: Boolean(testCase.lengths), initial_h: Boolean(testCase.initial),
    initial_c: cell === 'LSTM' && Boolean(testCase.initial), P: Boolean(testCase.peepholes),
  };
  const order = ['X', 'W', 'R', 'B', 'sequence_lens', 'initial_h', ...(cell === 'LSTM' ? ['initial_c', 'P'] : [])];
  let last = order.length;
  while (!present[order[last - 1]]) last--;
  const nodeInputs = order.slice(0, last).map((name) => (present[name] ? name : ''));
  const outputNames = (cell === 'LSTM' ? ['Y', 'Y_h', 'Y_c'] : ['Y', 'Y_h']) as Array<'Y' | 'Y_h' | 'Y_c'>;
  const wanted = testCase.outputs ?? outputNames;
  const yShape = batchFirst ? [b, t, directions, h] : [t, directions, b, h];
  const outputShapes: Record<string, number[]> = { Y: yShape, Y_h: shapes.initial_h, Y_c: shapes.initial_h };

  const graph = new GraphBuilder(cell.toLowerCase());
  for (const name of order) {
    if (present[name]) graph.input(name, name === 'sequence_lens' ? 'INT32' : 'FP32', shapes[name]);
  }
  graph.node(cell, nodeInputs, outputNames.map((name) => (wanted.includes(name) ? name : '')), {
    hidden_size: h, ...(testCase.direction ? { direction: testCase.direction } : {}), ...(testCase.layout ? { layout: 1 } : {}), ...testCase.attributes,
  }, `${cell.toLowerCase()}_under_test`);
  for (const name of wanted) graph.output(name, 'FP32', outputShapes[name]);
  const bytes = graph.toBytes({ opset: testCase.opset ?? 14 });
  const inputs = () => new Map(order.filter((name) => present[name]).map((name): [string, HostTensor] => [
    name, name === 'sequence_lens'
      ? { datatype: 'INT32', shape: [b], data: Int32Array.from(testCase.lengths!) }
      : randomTensor(shapes[name], name === 'X' || name.startsWith('initial') ? 1 : 0.5),
  ]));
  return { bytes, inputs };
}

async function checkAgainstOrt(testCase: RecurrentCase): Promise<void> {
  const { bytes, inputs } = recurrentModel(testCase);
  await checkRuns(gpu, bytes, [inputs(), inputs()]);
}

/** `tensor` with its dims permuted: output dim i is input dim perm[i]. */
function permute(tensor: HostTensor, perm: number[]): HostTensor {
  const shape = perm.map((axis) => tensor.shape[axis]);
  const inStrides = tensor.shape.map((_, axis) => tensor.shape.slice(axis + 1).reduce((total, dim) => total * dim, 1));
  const values = tensor.data as Float32Array;
  const out = new Float32Array(values.length);
  const index = new Array<number>(shape.length).fill(0);
  for (let flat = 0; flat < out.length; flat++) {
    out[flat] = values[index.reduce((offset, position, dim) => offset + position * inStrides[perm[dim]], 0)];
    for (let dim = shape.length - 1; dim >= 0 && ++index[dim] === shape[dim]; dim--) index[dim] = 0;
  }
  return { datatype: 'FP32', shape, data: out };
}

/**
 * onnxruntime's CPU kernels refuse layout=1, so ours with layout=1 is compared with its layout 0
 * on the same values transposed: X and the states swap their first two dims, Y [T, D, B, H]
 * becomes [B, T, D, H].
 */
async function checkBatchFirst(testCase: RecurrentCase): Promise<void> {
  const ours = recurrentModel({ ...testCase, layout: 1 });
  const reference = recurrentModel(testCase);
  const model = await compileOnnxModel(gpu, ours.bytes, { isolate: false });
  try {
    const inputs = ours.inputs();
    const swapped = new Map([...inputs].map(([name, tensor]): [string, HostTensor] =>
      [name, ['X', 'initial_h', 'initial_c'].includes(name) ? permute(tensor, [1, 0, 2]) : tensor]));
    const [result, expected] = await Promise.all([model.run(inputs), runOrt(reference.bytes, swapped)]);
    for (const [name, tensor] of expected) {
      expectClose(name, result.outputs.get(name), name === 'Y' ? permute(tensor, [2, 0, 1, 3]) : permute(tensor, [1, 0, 2]));
    }
  } finally {
    model.dispose();
  }
}

const SIZES = { timeSteps: 5, batch: 3, inputSize: 7, hidden: 13 };

describe('RNN, GRU and LSTM against onnxruntime', () => {
  for (const cell of ['RNN', 'GRU', 'LSTM'] as const) {
    for (const direction of ['forward', 'reverse', 'bidirectional'] as const) {
      it(`${cell} ${direction}: bias, initial state, every output`, () =>
        checkAgainstOrt({ cell, direction, ...SIZES, bias: true, initial: true }));
    }
    it(`${cell} layout=1 (batch first), bidirectional, against layout 0 on transposed tensors`, () =>
      checkBatchFirst({ cell, direction: 'bidirectional', ...SIZES, bias: true, initial: true }));
    for (const opset of [7, 22]) {
      it(`${cell} at opset ${opset}`, () => checkAgainstOrt({ cell, ...SIZES, batch: 2, bias: true, opset }));
    }
    it(`${cell} with sequence_lens, bidirectional`, () =>
      checkAgainstOrt({ cell, direction: 'bidirectional', ...SIZES, batch: 4, lengths: [5, 2, 1, 4], bias: true, initial: true }));
    it(`${cell} with only Y_h named, no bias`, () => checkAgainstOrt({ cell, ...SIZES, outputs: ['Y_h'] }));
    it(`${cell} with only Y named`, () => checkAgainstOrt({ cell, direction: 'reverse', ...SIZES, bias: true, outputs: ['Y'] }));
    it(`${cell} with clip`, () => checkAgainstOrt({ cell, direction: 'bidirectional', ...SIZES, bias: true, attributes: { clip: float(0.4) } }));
  }

  it('GRU with linear_before_reset, in both directions with sequence_lens', () => checkAgainstOrt({
    cell: 'GRU', direction: 'bidirectional', ...SIZES, bias: true, initial: true, lengths: [3, 5, 2], attributes: { linear_before_reset: 1 },
  }));
  it('LSTM with peepholes and sequence_lens', () => checkAgainstOrt({
    cell: 'LSTM', direction: 'bidirectional', ...SIZES, bias: true, initial: true, peepholes: true, lengths: [4, 1, 5],
  }));
  it('LSTM with input_forget and peepholes', () => checkAgainstOrt({
    cell: 'LSTM', ...SIZES, bias: true, initial: true, peepholes: true, attributes: { input_forget: 1 },
  }));
  it('a longer sequence and a larger hidden state', () => checkAgainstOrt({ cell: 'LSTM', timeSteps: 17, batch: 2, inputSize: 33, hidden: 70, bias: true }));

  const ACTIVATION_CASES: Array<{ cell: Cell; activations: string[]; alpha?: number[]; beta?: number[] }> = [
    { cell: 'RNN', activations: ['Relu'] },
    { cell: 'RNN', activations: ['LeakyRelu'], alpha: [0.2] },
    { cell: 'RNN', activations: ['Elu'], alpha: [0.7] },
    { cell: 'RNN', activations: ['Softsign'] },
    { cell: 'RNN', activations: ['Softplus'] },
    { cell: 'RNN', activations: ['ThresholdedRelu'], alpha: [0.1] },
    { cell: 'RNN', activations: ['Affine'], alpha: [0.5], beta: [0.1] },
    { cell: 'RNN', activations: ['ScaledTanh'], alpha: [1.5], beta: [0.7] },
    { cell: 'GRU', activations: ['HardSigmoid', 'Softsign'], alpha: [0.3], beta: [0.4] },
    { cell: 'LSTM', activations: ['HardSigmoid', 'Tanh', 'Softsign'], alpha: [0.25], beta: [0.45] },
  ];
  for (const { cell, activations, alpha, beta } of ACTIVATION_CASES) {
    it(`${cell} with activations ${activations.join(', ')}`, () => checkAgainstOrt({
      cell, ...SIZES, bias: true, initial: true, attributes: {
        activations: activations, ...(alpha ? { activation_alpha: floats(alpha) } : {}), ...(beta ? { activation_beta: floats(beta) } : {}),
      },
    }));
  }
  it('a bidirectional RNN with one activation per direction', () => checkAgainstOrt({
    cell: 'RNN', direction: 'bidirectional', ...SIZES, bias: true, attributes: { activations: ['Relu', 'Tanh'] },
  }));
});

describe('recurrent layers inside a model', () => {
  it('two stacked bidirectional LSTMs (Y reshaped into the next input) and a GRU on the same input, their final states added', async () => {
    const [t, b, inputSize, h] = [6, 3, 5, 9];
    const weights = (name: string, shape: number[]) => ({ name, shape, tensor: randomTensor(shape, 0.5) });
    const first = [weights('w1', [2, 4 * h, inputSize]), weights('r1', [2, 4 * h, h]), weights('b1', [2, 8 * h])];
    const second = [weights('w2', [2, 4 * h, 2 * h]), weights('r2', [2, 4 * h, h]), weights('b2', [2, 8 * h])];
    const gru = [weights('w3', [2, 3 * h, inputSize]), weights('r3', [2, 3 * h, h])];
    const graph = new GraphBuilder('stacked').input('x', 'FP32', [t, b, inputSize]);
    for (const { name, shape, tensor } of [...first, ...second, ...gru]) graph.initializer(name, 'FP32', shape, tensor.data);
    const bytes = graph.initializer('merged_shape', 'INT64', [3], BigInt64Array.from([BigInt(t), BigInt(b), BigInt(2 * h)]))
      .node('LSTM', ['x', 'w1', 'r1', 'b1'], ['y1'], { hidden_size: h, direction: 'bidirectional' })
      .node('Transpose', ['y1'], ['y1_t'], { perm: [0, 2, 1, 3] })
      .node('Reshape', ['y1_t', 'merged_shape'], ['x2'])
      .node('LSTM', ['x2', 'w2', 'r2', 'b2'], ['', 'h2', 'c2'], { hidden_size: h, direction: 'bidirectional' })
      .node('GRU', ['x', 'w3', 'r3'], ['', 'h3'], { hidden_size: h, direction: 'bidirectional', linear_before_reset: 1 })
      .node('Add', ['h2', 'h3'], ['sum'])
      .node('Mul', ['sum', 'c2'], ['y'])
      .output('y', 'FP32', [2, b, h]).toBytes({ opset: 14 });
    await checkRuns(gpu, bytes, [new Map([['x', randomTensor([t, b, inputSize])]]), new Map([['x', randomTensor([t, b, inputSize])]])]);
  });
});

describe('the projection on either GEMM', () => {
  // lavapipe picks the simd GEMM; GPUs the tiled one. Both must give the same projection.
  for (const gemmAlgorithm of ['simd', 'tiled'] as const) {
    for (const cell of ['GRU', 'LSTM'] as const) {
      it(`${cell} on the ${gemmAlgorithm} GEMM, bidirectional, with an input size no multiple of 4`, async () => {
        const { bytes, inputs } = recurrentModel({ cell, direction: 'bidirectional', timeSteps: 7, batch: 5, inputSize: 37, hidden: 11, bias: true, initial: true });
        const model = await compileOnnxModel(gpu, bytes, { isolate: false, gemmAlgorithm });
        try {
          const feeds = inputs();
          const [ours, reference] = await Promise.all([model.run(feeds), runOrt(bytes, feeds)]);
          for (const [name, tensor] of reference) expectClose(name, ours.outputs.get(name), tensor);
        } finally {
          model.dispose();
        }
      });
    }
  }
});

describe('RNN, GRU and LSTM in fp16 storage', () => {
  // Floats stored as f16 (the state included), arithmetic in f32; an adapter without shader-f16 runs fp32.
  for (const cell of ['RNN', 'GRU', 'LSTM'] as const) {
    it(`${cell} bidirectional with sequence_lens within the fp16 tolerance`, async () => {
      const { bytes, inputs } = recurrentModel({ cell, direction: 'bidirectional', ...SIZES, bias: true, initial: true, lengths: [5, 3, 4] });
      const model = await compileOnnxModel(gpu, bytes, { precision: 'fp16', isolate: false });
      try {
        expect(model.precision).toBe(gpu.hasF16 ? 'fp16' : 'fp32');
        const feeds = inputs();
        const [ours, reference] = await Promise.all([model.run(feeds), runOrt(bytes, feeds)]);
        for (const [name, tensor] of reference) expectCloseFp16(name, ours.outputs.get(name), tensor);
      } finally {
        model.dispose();
      }
    });
  }
});

describe('RNN, GRU and LSTM edge cases and refusals', () => {
  it('an empty batch gives empty outputs', async () => {
    const { bytes, inputs } = recurrentModel({ cell: 'LSTM', timeSteps: 3, batch: 0, inputSize: 4, hidden: 5, bias: true });
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      const result = await model.run(inputs());
      expect(result.outputs.get('Y')!.shape).toEqual([3, 1, 0, 5]);
      expect(result.outputs.get('Y_c')!.shape).toEqual([1, 0, 5]);
    } finally {
      model.dispose();
    }
  });

  it('an empty sequence leaves the initial state as Y_h and Y_c', async () => {
    const { bytes, inputs } = recurrentModel({ cell: 'LSTM', direction: 'bidirectional', timeSteps: 0, batch: 2, inputSize: 3, hidden: 4, bias: true, initial: true });
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      const feeds = inputs();
      const result = await model.run(feeds);
      expect(result.outputs.get('Y')!.shape).toEqual([0, 2, 2, 4]);
      expectClose('Y_h', result.outputs.get('Y_h'), feeds.get('initial_h')!);
      expectClose('Y_c', result.outputs.get('Y_c'), feeds.get('initial_c')!);
    } finally {
      model.dispose();
    }
  });

  it('refuses an unknown activation and a wrong activation count, naming the node', async () => {
    const refusals: Array<[Record<string, AttributeValue>, string]> = [
      [{ activations: ['Swish'] }, "activation 'Swish'"],
      [{ activations: ['Tanh', 'Tanh'] }, 'activations lists 2 functions'],
    ];
    for (const [attributes, detail] of refusals) {
      const error = await compileError(gpu, recurrentModel({ cell: 'RNN', ...SIZES, attributes }).bytes);
      expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
      expect(error.message).toContain("node 'rnn_under_test'");
      expect(error.message).toContain(detail);
    }
  });

  it('refuses a direction ONNX does not define', async () => {
    const error = await compileError(gpu, recurrentModel({ cell: 'GRU', ...SIZES, attributes: { direction: 'sideways' } }).bytes);
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("direction='sideways'");
  });

  it('answers INVALID_ARGUMENT for weights that do not match the input and for sequence_lens out of range', async () => {
    const { bytes } = recurrentModel({ cell: 'RNN', ...SIZES, lengths: [1, 2, 3] });
    const model = await compileOnnxModel(gpu, bytes, { isolate: false });
    try {
      const inputs = recurrentModel({ cell: 'RNN', ...SIZES, lengths: [1, 2, 3] }).inputs();
      inputs.set('sequence_lens', { datatype: 'INT32', shape: [3], data: Int32Array.from([1, 9, 2]) });
      await expect(model.run(inputs)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining("'sequence_lens' holds 9") });
      inputs.set('sequence_lens', { datatype: 'INT32', shape: [3], data: Int32Array.from([1, 2, 2]) });
      inputs.set('W', randomTensor([1, 13, 6]));
      await expect(model.run(inputs)).rejects.toMatchObject({ code: ErrorCode.INVALID_ARGUMENT, message: expect.stringContaining("input 'W' has shape [1, 13, 6]") });
    } finally {
      model.dispose();
    }
  });
});
