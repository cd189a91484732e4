/**
 * The signal operators against onnxruntime on fresh random inputs: DFT at opset 17 (axis
 * attribute) and 20 (axis input): real and complex, forward and inverse, one-sided, dft_length
 * padding and truncating, negative axes; STFT with a window, a frame_length or both, complex
 * signals; HannWindow, HammingWindow and BlackmanWindow (periodic and symmetric, sizes read back
 * from the GPU or folded at load); MelWeightMatrix. Then the refusals and run-time errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { randomTensor } from '../numerics/ort-reference.ts';
import { compileError, int64 } from '../numerics/one-node.ts';
import { checkRuns, foldedModel, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const scalar = (value: number): HostTensor => int64([value], []);

/** One `op` node over FP32 graph inputs `floats` (fresh each run) and constant or graph-input integer scalars. */
interface SignalCase {
  readonly op: string;
  readonly floats: ReadonlyArray<readonly [name: string, shape: number[]]>;
  /** Node inputs in order: a float input's name, '' for an omitted one, or a scalar (an initializer, or a graph input with `asInput`). */
  readonly nodeInputs: ReadonlyArray<string | { name: string; value: number; asInput?: boolean }>;
  readonly attributes?: Record<string, AttributeValue>;
  readonly opset?: number;
}

function signalModel(testCase: SignalCase): { bytes: Uint8Array; fixed: Map<string, HostTensor> } {
  const graph = new GraphBuilder(testCase.op.toLowerCase());
  for (const [name, shape] of testCase.floats) graph.input(name, 'FP32', shape);
  const fixed = new Map<string, HostTensor>();
  const names = testCase.nodeInputs.map((input) => {
    if (typeof input === 'string') return input;
    if (input.asInput) {
      graph.input(input.name, 'INT64', []);
      fixed.set(input.name, scalar(input.value));
    } else {
      graph.initializer(input.name, 'INT64', [], BigInt64Array.of(BigInt(input.value)));
    }
    return input.name;
  });
  graph.node(testCase.op, names, ['y'], testCase.attributes ?? {}, `${testCase.op.toLowerCase()}_under_test`).output('y', 'FP32', []);
  return { bytes: unrankedOutputs(graph, testCase.opset ?? 17), fixed };
}

async function signalCase(testCase: SignalCase): Promise<void> {
  const { bytes, fixed } = signalModel(testCase);
  await checkRuns(gpu, bytes, [0, 1].map(() => new Map([...testCase.floats.map(([name, shape]) => [name, randomTensor(shape)] as const), ...fixed])));
}

/** The forward DFT of `count` samples (pairs when `complex`) by its definition, in float64, as [bins, 2]. */
function directDft(samples: ArrayLike<number>, count: number, bins: number, complex = false): Float64Array {
  const out = new Float64Array(2 * bins);
  for (let k = 0; k < bins; k++) {
    for (let n = 0; n < count; n++) {
      const angle = (-2 * Math.PI * ((k * n) % count)) / count;
      const [re, im] = complex ? [samples[2 * n], samples[2 * n + 1]] : [samples[n], 0];
      out[2 * k] += re * Math.cos(angle) - im * Math.sin(angle);
      out[2 * k + 1] += re * Math.sin(angle) + im * Math.cos(angle);
    }
  }
  return out;
}

/** Our output within 1e-5 of its largest magnitude of `exact` (the inputs' data in order, computed in float64). */
async function checkAgainstFloat64(bytes: Uint8Array, inputs: Map<string, HostTensor>, exact: (data: Float32Array[]) => Float64Array): Promise<void> {
  const model = await compileOnnxModel(gpu, bytes, { isolate: false });
  try {
    const ours = (await model.run(inputs)).outputs.get('y')!.data as Float32Array;
    const want = exact([...inputs.values()].map((tensor) => tensor.data as Float32Array));
    expect(ours.length).toBe(want.length);
    const scale = want.reduce((largest, value) => Math.max(largest, Math.abs(value)), 0);
    const worst = want.reduce((largest, value, index) => Math.max(largest, Math.abs(ours[index] - value)), 0);
    expect(worst, `largest error, against a largest magnitude of ${scale}`).toBeLessThanOrEqual(1e-5 * scale);
  } finally {
    model.dispose();
  }
}

describe('DFT (opset 17: axis attribute)', () => {
  it('real input along axis 1, several batch dims and an inner dim', () => signalCase({ op: 'DFT', floats: [['x', [3, 12, 5, 1]]], nodeInputs: ['x'] }));
  it('complex input along axis 2, inverse', () => signalCase({ op: 'DFT', floats: [['x', [2, 3, 9, 2]]], nodeInputs: ['x'], attributes: { axis: 2, inverse: 1 } }));
  it('one-sided real input, an odd and an even length', async () => {
    await signalCase({ op: 'DFT', floats: [['x', [2, 11, 1]]], nodeInputs: ['x'], attributes: { onesided: 1 } });
    await signalCase({ op: 'DFT', floats: [['x', [4, 3, 16, 1]]], nodeInputs: ['x'], attributes: { axis: 2, onesided: 1 } });
  });
  it('dft_length longer (zero padding) and shorter (truncation) than the signal', async () => {
    await signalCase({ op: 'DFT', floats: [['x', [2, 7, 2]]], nodeInputs: ['x', { name: 'n', value: 13 }] });
    await signalCase({ op: 'DFT', floats: [['x', [3, 20, 1]]], nodeInputs: ['x', { name: 'n', value: 9, asInput: true }], attributes: { onesided: 1 } });
  });
  it('a negative axis and a length-1 transform', async () => {
    await signalCase({ op: 'DFT', floats: [['x', [2, 5, 6, 2]]], nodeInputs: ['x'], attributes: { axis: -2, inverse: 1 } });
    await signalCase({ op: 'DFT', floats: [['x', [3, 1, 1]]], nodeInputs: ['x'] });
  });
  it('an empty batch', () => signalCase({ op: 'DFT', floats: [['x', [0, 8, 1]]], nodeInputs: ['x'], attributes: { onesided: 1 } }));
  it('a long transform stays accurate (twiddles from the host table), against float64', async () => {
    // onnxruntime forms 2 pi k n / N in f32 for lengths that are not powers of 2: 1e-2 off here.
    const { bytes } = signalModel({ op: 'DFT', floats: [['x', [1, 1000, 1]]], nodeInputs: ['x'] });
    await checkAgainstFloat64(bytes, new Map([['x', randomTensor([1, 1000, 1])]]), ([x]) => directDft(x, 1000, 1000));
  });
});

describe('DFT (opset 20: axis input)', () => {
  it('the default axis -2', () => signalCase({ op: 'DFT', floats: [['x', [2, 3, 10, 1]]], nodeInputs: ['x'], opset: 20 }));
  it('axis 1 given as an input, with dft_length, inverse', () =>
    signalCase({ op: 'DFT', floats: [['x', [2, 8, 3, 2]]], nodeInputs: ['x', { name: 'n', value: 6 }, { name: 'axis', value: 1, asInput: true }], attributes: { inverse: 1 }, opset: 20 }));
  it('axis omitted but dft_length given', () => signalCase({ op: 'DFT', floats: [['x', [3, 14, 1]]], nodeInputs: ['x', { name: 'n', value: 16 }], attributes: { onesided: 1 }, opset: 20 }));
});

describe('STFT', () => {
  it('a window, one-sided', () => signalCase({ op: 'STFT', floats: [['x', [2, 61, 1]], ['w', [12]]], nodeInputs: ['x', { name: 'step', value: 7 }, 'w'] }));
  it('an empty batch', () => signalCase({ op: 'STFT', floats: [['x', [0, 30, 1]], ['w', [8]]], nodeInputs: ['x', { name: 'step', value: 3 }, 'w'] }));
  it('frame_length alone, read back from a graph input', () =>
    signalCase({ op: 'STFT', floats: [['x', [1, 50, 1]]], nodeInputs: ['x', { name: 'step', value: 5, asInput: true }, '', { name: 'len', value: 15, asInput: true }] }));
  it('window and frame_length, a complex signal, two-sided, against float64', async () => {
    // onnxruntime's STFT of a complex signal is off by whole units here (up to 4 of ~10).
    const { bytes } = signalModel({ op: 'STFT', floats: [['x', [3, 40, 2]], ['w', [9]]], nodeInputs: ['x', { name: 'step', value: 4 }, 'w', { name: 'len', value: 9 }], attributes: { onesided: 0 } });
    await checkAgainstFloat64(bytes, new Map([['x', randomTensor([3, 40, 2])], ['w', randomTensor([9])]]), ([x, window]) => {
      const frames = Math.floor((40 - 9) / 4) + 1;
      const out = new Float64Array(3 * frames * 9 * 2);
      for (let batch = 0; batch < 3; batch++) {
        for (let frame = 0; frame < frames; frame++) {
          const samples = Float64Array.from({ length: 18 }, (_, index) => x[(batch * 40 + frame * 4) * 2 + index] * window[index >> 1]);
          out.set(directDft(samples, 9, 9, true), (batch * frames + frame) * 18);
        }
      }
      return out;
    });
  });
});

describe('window functions', () => {
  const windows = ['HannWindow', 'HammingWindow', 'BlackmanWindow'];
  it.each(windows.flatMap((op) => [1, 10, 33].flatMap((size) => [[op, size, 1], [op, size, 0]] as const)))('%s of %i, periodic %i (size a graph input)', (op, size, periodic) =>
    signalCase({ op, floats: [], nodeInputs: [{ name: 'size', value: size, asInput: true }], attributes: { periodic } }));
  it.each(windows)('%s folded at load', async (op) => void await checkRuns(gpu, foldedModel(op, [scalar(17)], [17], { periodic: 0, output_datatype: 1 }, 17), [new Map([['x', randomTensor([17])]])]));
});

describe('MelWeightMatrix', () => {
  const melInputs = (bins: number, dftLength: number, rate: number, low: number, high: number) => {
    const graph = new GraphBuilder('mel').input('x', 'FP32', [Math.floor(dftLength / 2) + 1, bins]);
    graph.initializer('bins', 'INT64', [], BigInt64Array.of(BigInt(bins))).initializer('dft', 'INT64', [], BigInt64Array.of(BigInt(dftLength)))
      .initializer('rate', 'INT64', [], BigInt64Array.of(BigInt(rate))).initializer('low', 'FP32', [], Float32Array.of(low)).initializer('high', 'FP32', [], Float32Array.of(high));
    graph.node('MelWeightMatrix', ['bins', 'dft', 'rate', 'low', 'high'], ['m']).node('Add', ['x', 'm'], ['y']).output('y', 'FP32', []);
    return unrankedOutputs(graph, 17);
  };
  it.each([[8, 16, 8192, 0, 4096], [10, 64, 16000, 100, 7000], [23, 257, 22050, 30, 10000]])('%i bins, dft_length %i, %i Hz, %d to %d Hz', async (bins, dftLength, rate, low, high) =>
    void await checkRuns(gpu, melInputs(bins, dftLength, rate, low, high), [new Map([['x', randomTensor([Math.floor(dftLength / 2) + 1, bins])]])]));
});

describe('what the signal operators refuse', () => {
  it('DFT inverse with onesided is FAILED_PRECONDITION', async () => {
    const error = await compileError(gpu, signalModel({ op: 'DFT', floats: [['x', [1, 8, 2]]], nodeInputs: ['x'], attributes: { inverse: 1, onesided: 1 } }).bytes);
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("operator 'DFT' (node 'dft_under_test') is not supported with inverse=1 with onesided=1");
  });
  it('an axis attribute at opset 20 and an axis input at 17 are refused', async () => {
    const attribute = await compileError(gpu, signalModel({ op: 'DFT', floats: [['x', [1, 8, 1]]], nodeInputs: ['x'], attributes: { axis: 1 }, opset: 20 }).bytes);
    expect(attribute.message).toContain("has an 'axis' attribute, which DFT-20 replaced by its third input");
    const input = await compileError(gpu, signalModel({ op: 'DFT', floats: [['x', [1, 8, 1]]], nodeInputs: ['x', '', { name: 'axis', value: 1 }] }).bytes);
    expect(input.message).toContain('has an axis input, which DFT takes from opset 20');
  });
  it('shapes that do not fit are INVALID_ARGUMENT at run time, naming the value', async () => {
    const cases: Array<[SignalCase, Map<string, HostTensor>, RegExp]> = [
      [{ op: 'DFT', floats: [['x', [2, 8, 3]]], nodeInputs: ['x'] }, new Map([['x', randomTensor([2, 8, 3])]]), /last dim to be 1 \(real\) or 2 \(complex\)/],
      [{ op: 'DFT', floats: [['x', [2, 8, 2]]], nodeInputs: ['x'], attributes: { onesided: 1 } }, new Map([['x', randomTensor([2, 8, 2])]]), /onesided=1 needs a real input/],
      [{ op: 'STFT', floats: [['x', [1, 5, 1]], ['w', [8]]], nodeInputs: ['x', { name: 'step', value: 2 }, 'w'] },
        new Map([['x', randomTensor([1, 5, 1])], ['w', randomTensor([8])]]), /frame_length 8 exceeds the signal's 5 samples/],
      [{ op: 'STFT', floats: [['x', [1, 20, 1]], ['w', [8]]], nodeInputs: ['x', { name: 'step', value: 2 }, 'w', { name: 'len', value: 6 }] },
        new Map([['x', randomTensor([1, 20, 1])], ['w', randomTensor([8])]]), /window has 8 values, frame_length is 6/],
    ];
    const mel = new GraphBuilder('mel_out_of_range').input('rate', 'INT64', []);
    mel.initializer('bins', 'INT64', [], BigInt64Array.of(23n)).initializer('dft', 'INT64', [], BigInt64Array.of(257n))
      .initializer('low', 'FP32', [], Float32Array.of(30)).initializer('high', 'FP32', [], Float32Array.of(11025))
      .node('MelWeightMatrix', ['bins', 'dft', 'rate', 'low', 'high'], ['y']).output('y', 'FP32', []);
    const melModel = await compileOnnxModel(gpu, unrankedOutputs(mel, 17), { isolate: false });
    const melError = await melModel.run(new Map([['rate', scalar(22050)]])).then(() => undefined, (thrown: unknown) => thrown);
    melModel.dispose();
    expect(melError).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
    expect((melError as Error).message).toMatch(/upper_edge_hertz 11025 falls in bin 129, past the 129 bins of dft_length 257 at 22050 Hz/);
    for (const [testCase, inputs, message] of cases) {
      const model = await compileOnnxModel(gpu, signalModel(testCase).bytes, { isolate: false });
      try {
        const error = await model.run(inputs).then(() => undefined, (thrown: unknown) => thrown);
        expect(error).toMatchObject({ code: ErrorCode.INVALID_ARGUMENT });
        expect((error as Error).message).toMatch(message);
      } finally {
        model.dispose();
      }
    }
  });
});
