/**
 * Dropout against onnxruntime (CPU) on fresh random inputs: its mask (all true) in inference at
 * opsets 12, 13 and 22, read by the graph and by a GPU node, zero-size and scalar inputs (at 10
 * and 11, all true as ONNX's reference defines it, where onnxruntime writes false);
 * training_mode=true with ratio 0 (the identity) given as constants and in the request; then the
 * refusals of a ratio above 0 (at load for constants, per run for request values) and the mask
 * of the opsets before 10, which is not computed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { GraphBuilder } from '../../../services/onnx/builder.ts';
import type { HostTensor } from '../../../services/onnx/model.ts';
import { compileError, fp32 } from '../numerics/one-node.ts';
import { randomTensor } from '../numerics/ort-reference.ts';
import { checkRuns, unrankedOutputs } from './op-cases.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const bool = (value: boolean): HostTensor => ({ datatype: 'BOOL', shape: [], data: Uint8Array.of(value ? 1 : 0) });
const scalar = (value: number): HostTensor => fp32([value], []);

interface DropoutGraph {
  shape: number[];
  opset: number;
  /** Node inputs after x: names of graph inputs ('r', 't') or initializers ('r_c', 't_c'). */
  extra?: string[];
  initializers?: Record<string, HostTensor>;
  /** The mask is named and a graph output (true), named and unread ('unread'), or absent. */
  mask?: true | 'unread';
  /** A GPU node reads the mask (Not) and the output (Neg). */
  readOnGpu?: boolean;
}

function dropoutModel({ shape, opset, extra = [], initializers = {}, mask, readOnGpu }: DropoutGraph): Uint8Array {
  const graph = new GraphBuilder('dropout').input('x', 'FP32', shape);
  if (extra.includes('r')) graph.input('r', 'FP32', []);
  if (extra.includes('t')) graph.input('t', 'BOOL', []);
  for (const [name, tensor] of Object.entries(initializers)) graph.initializer(name, tensor.datatype, tensor.shape, tensor.data);
  const outputs = mask ? ['y_raw', 'z_raw'] : ['y_raw'];
  graph.node('Dropout', ['x', ...extra], outputs, opset < 12 ? { ratio: 0.5 } : {}, 'dropout_under_test');
  graph.node(readOnGpu ? 'Neg' : 'Identity', ['y_raw'], ['y']).output('y', 'FP32', []);
  if (mask === true) graph.node(readOnGpu ? 'Not' : 'Identity', ['z_raw'], ['z']).output('z', 'BOOL', []);
  return unrankedOutputs(graph, opset);
}

const runs = (shape: number[], extra: Record<string, HostTensor> = {}) =>
  [0, 1].map(() => new Map<string, HostTensor>([['x', randomTensor(shape)], ...Object.entries(extra)]));

describe('Dropout mask', () => {
  const shapes = [[7, 9], [2, 3, 5], [5], [], [0, 3]];
  for (const opset of [12, 13, 22]) {
    it.each(shapes)(`opset ${opset}: all true for an input of %j`, async (...shape) => {
      await checkRuns(gpu, dropoutModel({ shape, opset, mask: true }), runs(shape));
    });
  }
  it.each([10, 11])('opset %i: all true as ONNX defines it (onnxruntime fills it with false before opset 12)', async (opset) => {
    const model = await compileOnnxModel(gpu, dropoutModel({ shape: [3, 7], opset, mask: true }), { isolate: false });
    try {
      const x = randomTensor([3, 7]);
      const { outputs } = await model.run(new Map([['x', x]]));
      expect(Array.from(outputs.get('y')!.data as Float32Array)).toEqual(Array.from(x.data as Float32Array));
      expect(outputs.get('z')!.datatype).toBe('BOOL');
      expect(Array.from(outputs.get('z')!.data as Uint8Array)).toEqual(new Array(21).fill(1));
    } finally {
      model.dispose();
    }
  });
  it('read by GPU nodes', async () => {
    await checkRuns(gpu, dropoutModel({ shape: [13, 5], opset: 13, mask: true, readOnGpu: true }), runs([13, 5]));
  });
  it('named but unread (as the zoo files name it), opsets 7 and 13', async () => {
    for (const opset of [7, 13]) await checkRuns(gpu, dropoutModel({ shape: [3, 11], opset, mask: 'unread' }), runs([3, 11]));
  });
  it('the mask of an opset before 10 (typed like the input), read by the graph, fails the load', async () => {
    const error = await compileError(gpu, dropoutModel({ shape: [3, 4], opset: 7, mask: true }));
    expect(error.message).toContain('z_raw');
  });
});

describe('Dropout training_mode=true', () => {
  it('with ratio 0 given in the request is the identity, mask all true', async () => {
    const shape = [6, 7];
    await checkRuns(gpu, dropoutModel({ shape, opset: 13, extra: ['r', 't'], mask: true }), runs(shape, { r: scalar(0), t: bool(true) }));
  });
  it('with ratio 0 and training_mode as constants, opsets 12 and 22', async () => {
    for (const opset of [12, 22]) {
      const model = dropoutModel({ shape: [4, 5], opset, extra: ['r_c', 't_c'], initializers: { r_c: scalar(0), t_c: bool(true) }, mask: true, readOnGpu: true });
      await checkRuns(gpu, model, runs([4, 5]));
    }
  });
  it('training_mode=false with any ratio is inference', async () => {
    await checkRuns(gpu, dropoutModel({ shape: [3, 8], opset: 13, extra: ['r', 't'], mask: true }), runs([3, 8], { r: scalar(0.75), t: bool(false) }));
  });
});

describe('Dropout refusals', () => {
  it('constant training_mode=true with a constant ratio above 0 is refused at load, naming the ratio', async () => {
    const error = await compileError(gpu, dropoutModel({ shape: [3, 4], opset: 13, extra: ['r_c', 't_c'], initializers: { r_c: scalar(0.25), t_c: bool(true) } }));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("operator 'Dropout' (node 'dropout_under_test') is not supported with training_mode=true and ratio 0.25 in the model");
    expect(error.message).toContain('only ratio 0 (the identity) runs');
  });
  it('constant training_mode=true without a ratio (the default 0.5) is refused at load', async () => {
    const error = await compileError(gpu, dropoutModel({ shape: [3, 4], opset: 13, extra: ['', 't_c'], initializers: { t_c: bool(true) } }));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain('training_mode=true and ratio 0.5 in the model');
  });
  it('training_mode=true and a ratio above 0 in the request is refused for that run; ratio 0 then runs', async () => {
    const model = await compileOnnxModel(gpu, dropoutModel({ shape: [3, 4], opset: 13, extra: ['r', 't'], mask: true }), { isolate: false });
    try {
      const refused = await model.run(new Map([['x', randomTensor([3, 4])], ['r', scalar(0.75)], ['t', bool(true)]])).then(() => undefined, (thrown: unknown) => thrown);
      expect(refused).toBeInstanceOf(NexusError);
      expect((refused as NexusError).code).toBe(ErrorCode.FAILED_PRECONDITION);
      expect((refused as NexusError).message).toContain('training_mode=true and ratio 0.75 in this run');
      const x = randomTensor([3, 4]);
      const { outputs } = await model.run(new Map([['x', x], ['r', scalar(0)], ['t', bool(true)]]));
      expect(Array.from(outputs.get('y')!.data as Float32Array)).toEqual(Array.from(x.data as Float32Array));
      expect(Array.from(outputs.get('z')!.data as Uint8Array)).toEqual(new Array(12).fill(1));
    } finally {
      model.dispose();
    }
  });
});
