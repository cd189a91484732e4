/**
 * Sequence and optional values inside a graph, against onnxruntime on fresh random inputs: the
 * sequence operators rewritten at load into the tensor operators they stand for, and the precise
 * refusals of what is not known at load.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder, graphAttribute, tensorAttribute } from '../../../services/onnx/builder.ts';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { checkModelAgainstOrt, compileError } from '../numerics/one-node.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const int64 = (values: number[], shape = [values.length]) => ({ datatype: 'INT64' as const, shape, data: BigInt64Array.from(values, (value) => BigInt(value)) });

describe('sequences', () => {
  for (const opset of [11, 13, 17]) {
    it(`SplitToSequence with split sizes, SequenceAt, SequenceLength, SequenceInsert, SequenceErase, ConcatFromSequence (opset ${opset})`, () => {
      const graph = new GraphBuilder('sequences').input('x', 'FP32', [6, 4]).input('y', 'FP32', [2, 4]);
      graph.initializer('split', 'INT64', [3], BigInt64Array.of(1n, 2n, 3n)).initializer('one', 'INT64', [], BigInt64Array.of(1n));
      graph.initializer('minus_one', 'INT64', [], BigInt64Array.of(-1n));
      graph.node('SplitToSequence', ['x', 'split'], ['pieces'], { axis: 0 });
      graph.node('SequenceAt', ['pieces', 'minus_one'], ['last']);
      graph.node('SequenceLength', ['pieces'], ['count']);
      graph.node('SequenceInsert', ['pieces', 'y', 'one'], ['inserted']);
      graph.node('SequenceErase', ['inserted', 'minus_one'], ['erased']);
      graph.node('ConcatFromSequence', ['erased'], ['joined'], { axis: 0 });
      graph.output('last', 'FP32', [3, 4]).output('count', 'INT64', []).output('joined', 'FP32', [5, 4]);
      return checkModelAgainstOrt(gpu, graph.toBytes({ opset }), [{ name: 'x', shape: [6, 4] }, { name: 'y', shape: [2, 4] }],
        [{ name: 'last', shape: [3, 4] }, { name: 'count', shape: [], datatype: 'INT64' }, { name: 'joined', shape: [5, 4] }]);
    });
  }

  it('SequenceConstruct, SequenceEmpty and SplitToSequence without split (keepdims 0) into ConcatFromSequence on a new axis', () => {
    const graph = new GraphBuilder('sequences').input('a', 'FP32', [2, 3]).input('b', 'FP32', [2, 3]).input('x', 'FP32', [3, 2, 3]);
    graph.node('SequenceEmpty', [], ['empty'], { dtype: 1 });
    graph.node('SequenceInsert', ['empty', 'a'], ['one']).node('SequenceInsert', ['one', 'b'], ['two']);
    graph.node('ConcatFromSequence', ['two'], ['stacked'], { axis: -1, new_axis: 1 });
    graph.node('SplitToSequence', ['x'], ['slices'], { axis: 0, keepdims: 0 });
    graph.node('ConcatFromSequence', ['slices'], ['rejoined'], { axis: 1, new_axis: 1 });
    graph.node('SequenceConstruct', ['a', 'b', 'a'], ['three']).node('ConcatFromSequence', ['three'], ['wide'], { axis: 1 });
    graph.output('stacked', 'FP32', [2, 3, 2]).output('rejoined', 'FP32', [2, 3, 3]).output('wide', 'FP32', [2, 9]);
    return checkModelAgainstOrt(gpu, graph.toBytes({ opset: 17 }), [{ name: 'a', shape: [2, 3] }, { name: 'b', shape: [2, 3] }, { name: 'x', shape: [3, 2, 3] }],
      [{ name: 'stacked', shape: [2, 3, 2] }, { name: 'rejoined', shape: [2, 3, 3] }, { name: 'wide', shape: [2, 9] }]);
  });

  it('Optional, OptionalHasElement and OptionalGetElement of a present value', () => {
    const graph = new GraphBuilder('optionals').input('x', 'FP32', [2, 3]);
    graph.node('Optional', ['x'], ['maybe']).node('OptionalHasElement', ['maybe'], ['has']).node('OptionalGetElement', ['maybe'], ['got']);
    graph.node('Relu', ['got'], ['y']);
    graph.output('has', 'BOOL', []).output('y', 'FP32', [2, 3]);
    return checkModelAgainstOrt(gpu, graph.toBytes({ opset: 18 }), [{ name: 'x', shape: [2, 3] }],
      [{ name: 'has', shape: [], datatype: 'BOOL' }, { name: 'y', shape: [2, 3] }]);
  });

  it('a position computed at run time is refused naming it', async () => {
    const graph = new GraphBuilder('sequences').input('x', 'FP32', [2]).input('at', 'INT64', []);
    graph.node('SequenceConstruct', ['x', 'x'], ['pair']).node('SequenceAt', ['pair', 'at'], ['y'], {}, 'pick');
    graph.output('y', 'FP32', [2]);
    const error = await compileError(gpu, graph.toBytes({ opset: 17 }));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("operator 'SequenceAt' (node 'pick') is not supported with position 'at' computed at run time");
  });

  /** Loop(m) appending x + i to a sequence each iteration, with a scan output 2 (x + i). */
  function appendingLoop(tripCount: string): GraphBuilder {
    const body = new GraphBuilder('body').input('i', 'INT64', []).input('c', 'BOOL', []).untypedInput('s');
    body.node('Identity', ['c'], ['c_out']).node('Cast', ['i'], ['i_float'], { to: 1 }).node('Add', ['x', 'i_float'], ['x_plus']);
    body.node('SequenceInsert', ['s', 'x_plus'], ['s_out']).node('Add', ['x_plus', 'x_plus'], ['doubled']);
    body.output('c_out', 'BOOL', []).untypedOutput('s_out').output('doubled', 'FP32', [2]);
    const graph = new GraphBuilder('loop').input('x', 'FP32', [2]);
    graph.node('SequenceEmpty', [], ['empty'], { dtype: 1 }).node('Loop', [tripCount, '', 'empty'], ['appended', 'doubles'], { body: graphAttribute(body) }, 'carrier');
    graph.node('ConcatFromSequence', ['appended'], ['y'], { axis: 0 }).node('SequenceLength', ['appended'], ['count']);
    return graph.output('y', 'FP32', [-1]).output('count', 'INT64', []).output('doubles', 'FP32', [-1, 2]);
  }

  it('a sequence carried through a Loop with a constant trip count is unrolled at load', () => {
    const graph = appendingLoop('m').initializer('m', 'INT64', [], BigInt64Array.of(3n));
    return checkModelAgainstOrt(gpu, graph.toBytes({ opset: 17 }), [{ name: 'x', shape: [2] }],
      [{ name: 'y', shape: [6] }, { name: 'count', shape: [], datatype: 'INT64' }, { name: 'doubles', shape: [3, 2] }]);
  });

  it('a sequence carried through a Loop whose trip count comes with the request is refused naming the node', async () => {
    const error = await compileError(gpu, appendingLoop('m').input('m', 'INT64', []).toBytes({ opset: 17 }));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("operator 'Loop' (node 'carrier') is not supported with a sequence carried through a Loop whose trip count is not a constant");
  });

  it('SequenceAt of a position folded from constants', () => {
    const graph = new GraphBuilder('sequences').input('x', 'FP32', [4, 2]);
    graph.node('Constant', [], ['two'], { value: tensorAttribute('INT64', [], int64([2], []).data) });
    graph.node('SplitToSequence', ['x'], ['rows'], { axis: 0 }).node('SequenceAt', ['rows', 'two'], ['row']);
    graph.output('row', 'FP32', [1, 2]);
    return checkModelAgainstOrt(gpu, graph.toBytes({ opset: 13 }), [{ name: 'x', shape: [4, 2] }], [{ name: 'row', shape: [1, 2] }]);
  });
});
