/**
 * If, Loop and Scan against onnxruntime on fresh random inputs: conditions known at load, from
 * the request and computed on the GPU (read back before the node is planned), nested and
 * outer-scope subgraphs, loops with a fixed trip count, a condition from the body, scan outputs
 * and no iterations at all, Scan at opset 8 (batch axis) and 9+ (axes and directions), and the
 * precise refusals: a loop past its unroll budget, a loop condition only the GPU knows, sequence
 * values at the API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { GraphBuilder, graphAttribute, tensorAttribute } from '../../../services/onnx/builder.ts';
import type { Datatype } from '../../../services/onnx/datatypes.ts';
import { ModelProto } from '../../../services/protocol/generated/onnx/onnx.ts';
import { ErrorCode } from '../../../services/domain/errors.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { compileGraph } from '../../../services/executor/compiler/index.ts';
import { checkModelAgainstOrt, compileError, int64, type InputSpec } from '../numerics/one-node.ts';
import { expectClose, expectCloseFp16, randomBooleans, randomTensor, runOrt } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const bool = (name: string, shape: number[] = []): InputSpec => ({ name, shape, datatype: 'BOOL', fill: (dims) => randomBooleans(dims) });
const float = (name: string, shape: number[], scale = 1): InputSpec => ({ name, shape, fill: (dims) => randomTensor(dims, scale) });
const scalarInt = (value: number) => tensorAttribute('INT64', [], BigInt64Array.of(BigInt(value)));

/** A branch computing `op(left, right)` into `output` from outer-scope values. */
function branch(name: string, op: string, inputs: string[], output: string, shape: number[]): GraphBuilder {
  return new GraphBuilder(name).node(op, inputs, [output]).output(output, 'FP32', shape);
}

function ifModel(condition: (graph: GraphBuilder) => string, thenBranch: GraphBuilder, elseBranch: GraphBuilder, shape: number[]): GraphBuilder {
  const graph = new GraphBuilder('if').input('x', 'FP32', [2, 3]).input('y', 'FP32', [2, 3]);
  const cond = condition(graph);
  graph.node('If', [cond], ['z'], { then_branch: graphAttribute(thenBranch), else_branch: graphAttribute(elseBranch) }, 'if_under_test');
  return graph.output('z', 'FP32', shape);
}

const check = (graph: GraphBuilder, inputs: InputSpec[], outputs: Array<{ name: string; shape: number[]; datatype?: Datatype }>, opset = 17) =>
  checkModelAgainstOrt(gpu, graph.toBytes({ opset }), inputs, outputs);

describe('If', () => {
  const xy = [float('x', [2, 3]), float('y', [2, 3])];
  for (const value of [true, false]) {
    it(`with a constant condition (${value}) runs that branch on outer values`, () => check(
      ifModel((graph) => {
        graph.initializer('c', 'BOOL', [], Uint8Array.of(value ? 1 : 0));
        return 'c';
      }, branch('then', 'Add', ['x', 'y'], 't', [2, 3]), branch('else', 'Mul', ['x', 'y'], 'e', [2, 3]), [2, 3]),
      xy, [{ name: 'z', shape: [2, 3] }]));
  }

  it('with a constant condition is inlined at load: the branch joins the graph, no If step remains', () => {
    const model = ifModel((graph) => {
      graph.node('Constant', [], ['c'], { value: tensorAttribute('BOOL', [], Uint8Array.of(1)) });
      return 'c';
    }, branch('then', 'Add', ['x', 'y'], 't', [2, 3]), branch('else', 'Mul', ['x', 'y'], 'e', [2, 3]), [2, 3]).toModel();
    const compiled = compileGraph(model, { precision: 'fp32', traits: { gemmAlgorithm: 'tiled' } });
    expect(compiled.steps.map((step) => step.node.opType)).not.toContain('If');
    expect(compiled.steps.map((step) => step.node.opType)).toContain('Add');
  });

  it('with the condition from the request takes either branch, shapes differing by branch', async () => {
    const graph = new GraphBuilder('if').input('c', 'BOOL', []).input('x', 'FP32', [2, 3]);
    const thenBranch = branch('then', 'Relu', ['x'], 't', [2, 3]);
    const elseBranch = new GraphBuilder('else').node('ReduceSum', ['x'], ['e'], { keepdims: 0 }).output('e', 'FP32', []);
    graph.node('If', ['c'], ['z'], { then_branch: graphAttribute(thenBranch), else_branch: graphAttribute(elseBranch) });
    graph.output('z', 'FP32', [-1, -1]);
    const bytes = graph.toBytes({ opset: 13 });
    for (const value of [true, false]) {
      await checkModelAgainstOrt(gpu, bytes, [{ name: 'c', shape: [], datatype: 'BOOL', fill: () => ({ datatype: 'BOOL', shape: [], data: Uint8Array.of(value ? 1 : 0) }) },
        float('x', [2, 3])], [{ name: 'z', shape: value ? [2, 3] : [] }]);
    }
  });

  it('with untyped branch outputs takes their types from what computes them', () => {
    const graph = new GraphBuilder('if').input('c', 'BOOL', []).input('x', 'FP32', [2, 3]);
    const thenBranch = new GraphBuilder('then').node('Relu', ['x'], ['t']).untypedOutput('t');
    const elseBranch = new GraphBuilder('else').node('Neg', ['x'], ['e']).untypedOutput('e');
    graph.node('If', ['c'], ['z'], { then_branch: graphAttribute(thenBranch), else_branch: graphAttribute(elseBranch) }).output('z', 'FP32', [2, 3]);
    return check(graph, [bool('c'), float('x', [2, 3])], [{ name: 'z', shape: [2, 3] }]);
  });

  it('with a condition computed on the GPU reads it back first', () => check(
    ifModel((graph) => {
      graph.node('ReduceSum', ['x'], ['sum'], { keepdims: 0 }).initializer('zero', 'FP32', [], Float32Array.of(0)).node('Greater', ['sum', 'zero'], ['positive']);
      return 'positive';
    }, branch('then', 'Sub', ['x', 'y'], 't', [2, 3]), branch('else', 'Div', ['y', 'x'], 'e', [2, 3]), [2, 3]),
    xy, [{ name: 'z', shape: [2, 3] }]));

  it('nested in a branch, on a condition the host computes from shapes in the outer scope', () => {
    const inner = new GraphBuilder('inner');
    inner.node('If', ['d'], ['u'], { then_branch: graphAttribute(branch('a', 'Sigmoid', ['x'], 'ua', [2, 3])), else_branch: graphAttribute(branch('b', 'Tanh', ['y'], 'ub', [2, 3])) });
    inner.node('Add', ['u', 'x'], ['v']).output('v', 'FP32', [2, 3]);
    const graph = new GraphBuilder('nested').input('c', 'BOOL', []).input('x', 'FP32', [-1, 3]).input('y', 'FP32', [-1, 3]);
    graph.node('Size', ['x'], ['size']).initializer('four', 'INT64', [], BigInt64Array.of(4n)).node('Greater', ['size', 'four'], ['d']);
    graph.node('If', ['c'], ['z'], { then_branch: graphAttribute(inner), else_branch: graphAttribute(branch('outer_else', 'Mul', ['x', 'y'], 'w', [2, 3])) });
    graph.output('z', 'FP32', [-1, 3]);
    return check(graph, [bool('c'), ...xy], [{ name: 'z', shape: [2, 3] }]);
  });

  it('nested, on a condition from the request and one computed on the GPU in the outer scope', async () => {
    const inner = new GraphBuilder('inner');
    inner.node('If', ['d'], ['u'], { then_branch: graphAttribute(branch('a', 'Sigmoid', ['x'], 'ua', [2, 3])), else_branch: graphAttribute(branch('b', 'Tanh', ['x'], 'ub', [2, 3])) });
    inner.node('If', ['positive'], ['v'], { then_branch: graphAttribute(branch('c', 'Add', ['u', 'x'], 'va', [2, 3])), else_branch: graphAttribute(branch('d', 'Mul', ['u', 'x'], 'vb', [2, 3])) });
    inner.output('v', 'FP32', [2, 3]);
    const graph = new GraphBuilder('nested').input('c', 'BOOL', []).input('d', 'BOOL', []).input('x', 'FP32', [2, 3]);
    graph.node('ReduceSum', ['x'], ['sum'], { keepdims: 0 }).initializer('zero', 'FP32', [], Float32Array.of(0)).node('Greater', ['sum', 'zero'], ['positive']);
    graph.node('If', ['c'], ['z'], { then_branch: graphAttribute(inner), else_branch: graphAttribute(branch('outer_else', 'Neg', ['x'], 'w', [2, 3])) }, 'outer_if');
    graph.output('z', 'FP32', [2, 3]);
    const bytes = graph.toBytes();
    for (const c of [true, false]) {
      await checkModelAgainstOrt(gpu, bytes, [{ name: 'c', shape: [], datatype: 'BOOL', fill: () => ({ datatype: 'BOOL', shape: [], data: Uint8Array.of(c ? 1 : 0) }) },
        bool('d'), float('x', [2, 3])], [{ name: 'z', shape: [2, 3] }]);
    }
  });
});

/** Loop body: y += x[i] (a slice of an outer constant by the iteration number), scan output y * w (an outer input). */
function loopBody(cond: (body: GraphBuilder) => string): GraphBuilder {
  const body = new GraphBuilder('body').input('i', 'INT64', []).input('cond_in', 'BOOL', []).input('y_in', 'FP32', [3]);
  body.node('Constant', [], ['one'], { value: scalarInt(1) }).node('Add', ['i', 'one'], ['end']);
  body.node('Constant', [], ['axes'], { value: tensorAttribute('INT64', [1], BigInt64Array.of(0n)) });
  body.node('Unsqueeze', ['i', 'axes'], ['start1']).node('Unsqueeze', ['end', 'axes'], ['end1']);
  body.node('Slice', ['table', 'start1', 'end1'], ['row']).node('Reshape', ['row', 'shape3'], ['row3']);
  body.node('Add', ['y_in', 'row3'], ['y_out']).node('Mul', ['y_out', 'w'], ['scan']);
  const condOut = cond(body);
  return body.output(condOut, 'BOOL', []).output('y_out', 'FP32', [3]).output('scan', 'FP32', [3]);
}

function loopModel(tripCount: string, condition: string, body: GraphBuilder, setup: (graph: GraphBuilder) => void = () => {}): GraphBuilder {
  const graph = new GraphBuilder('loop').input('y', 'FP32', [3]).input('w', 'FP32', [3]);
  graph.initializer('table', 'FP32', [512, 3], Float32Array.from({ length: 1536 }, (_, index) => Math.sin(index)));
  graph.initializer('shape3', 'INT64', [1], BigInt64Array.of(3n));
  setup(graph);
  graph.node('Loop', [tripCount, condition, 'y'], ['y_final', 'scans'], { body: graphAttribute(body) }, 'loop_under_test');
  return graph.output('y_final', 'FP32', [3]).output('scans', 'FP32', [-1, 3]);
}

const passCondition = (body: GraphBuilder) => {
  body.node('Identity', ['cond_in'], ['cond_out']);
  return 'cond_out';
};
const loopInputs = [float('y', [3]), float('w', [3])];

describe('Loop', () => {
  for (const trips of [5, 0, 300]) {
    it(`with a constant trip count of ${trips} carries values and stacks scan outputs`, () => check(
      loopModel('m', '', loopBody(passCondition), (graph) => graph.initializer('m', 'INT64', [], BigInt64Array.of(BigInt(trips)))),
      loopInputs, [{ name: 'y_final', shape: [3] }, { name: 'scans', shape: [trips, 3] }]));
  }

  it('with its condition computed in the body from the iteration number (no trip count)', () => check(
    loopModel('', 'start', loopBody((body) => {
      body.node('Constant', [], ['limit'], { value: scalarInt(3) }).node('Less', ['i', 'limit'], ['cond_out']);
      return 'cond_out';
    }), (graph) => graph.initializer('start', 'BOOL', [], Uint8Array.of(1))),
    loopInputs, [{ name: 'y_final', shape: [3] }, { name: 'scans', shape: [4, 3] }]));

  it('with the trip count and condition from the request', async () => {
    const bytes = loopModel('m', 'c', loopBody(passCondition)).input('m', 'INT64', []).input('c', 'BOOL', []).toBytes({ opset: 13 });
    for (const trips of [2, 6]) {
      await checkModelAgainstOrt(gpu, bytes, [...loopInputs, { name: 'm', shape: [], datatype: 'INT64', fill: () => int64([trips], []) }, bool('c')],
        [{ name: 'y_final', shape: [3] }]);
    }
  });

  it('with a trip count computed on the GPU (Range expanded into a Loop)', () => {
    const graph = new GraphBuilder('range').input('start', 'FP32', []).input('limit', 'FP32', []).input('delta', 'FP32', []);
    graph.node('Sub', ['limit', 'start'], ['span']).node('Div', ['span', 'delta'], ['steps']).node('Ceil', ['steps'], ['ceil']).node('Relu', ['ceil'], ['count']);
    graph.node('Cast', ['count'], ['trips'], { to: 7 });
    const body = new GraphBuilder('body').input('i', 'INT64', []).input('cond_in', 'BOOL', []).untypedInput('previous');
    body.node('Identity', ['cond_in'], ['cond_out']).node('Add', ['previous', 'delta'], ['current']).node('Identity', ['previous'], ['range']);
    body.output('cond_out', 'BOOL', []).output('current', 'FP32', []).output('range', 'FP32', []);
    graph.node('Loop', ['trips', '', 'start'], ['last', 'output'], { body: graphAttribute(body) });
    graph.output('output', 'FP32', [-1]);
    const fill = (value: number) => () => ({ datatype: 'FP32' as const, shape: [], data: Float32Array.of(value + Math.round(Math.random() * 4)) });
    return check(graph, [{ name: 'start', shape: [], fill: fill(1) }, { name: 'limit', shape: [], fill: fill(9) }, { name: 'delta', shape: [], fill: () => ({ datatype: 'FP32', shape: [], data: Float32Array.of(1.5) }) }],
      [], 11);
  });

  it('with an If in its body on a condition from the iteration number', () => {
    const body = new GraphBuilder('body').input('i', 'INT64', []).input('cond_in', 'BOOL', []).input('y_in', 'FP32', [3]);
    body.node('Identity', ['cond_in'], ['cond_out']).node('Constant', [], ['two'], { value: scalarInt(2) }).node('Less', ['i', 'two'], ['early']);
    body.node('If', ['early'], ['y_out'], { then_branch: graphAttribute(branch('add', 'Add', ['y_in', 'w'], 'sum', [3])), else_branch: graphAttribute(branch('mul', 'Mul', ['y_in', 'w'], 'product', [3])) });
    body.node('Neg', ['y_out'], ['scan']).output('cond_out', 'BOOL', []).output('y_out', 'FP32', [3]).output('scan', 'FP32', [3]);
    return check(loopModel('m', '', body, (graph) => graph.initializer('m', 'INT64', [], BigInt64Array.of(4n))),
      loopInputs, [{ name: 'y_final', shape: [3] }, { name: 'scans', shape: [4, 3] }]);
  });

  it('in fp16 storage (where the adapter has shader-f16) carries values and stacks scan outputs', async () => {
    const bytes = loopModel('m', '', loopBody(passCondition), (graph) => graph.initializer('m', 'INT64', [], BigInt64Array.of(3n))).toBytes();
    const model = await compileOnnxModel(gpu, bytes, { precision: 'fp16', isolate: false });
    try {
      expect(model.precision).toBe(gpu.hasF16 ? 'fp16' : 'fp32');
      const feeds = new Map([['y', randomTensor([3])], ['w', randomTensor([3])]]);
      const [ours, reference] = await Promise.all([model.run(feeds), runOrt(bytes, feeds)]);
      for (const [name, tensor] of reference) {
        if (model.precision === 'fp16') expectCloseFp16(name, ours.outputs.get(name), tensor);
        else expectClose(name, ours.outputs.get(name), tensor);
      }
    } finally {
      model.dispose();
    }
  });

  it(`past ${4096} iterations is refused naming the node and the budget`, async () => {
    const model = loopModel('m', '', loopBody(passCondition), (graph) => graph.initializer('m', 'INT64', [], BigInt64Array.of(5000n)));
    const error = await compileError(gpu, model.toBytes());
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("Loop 'loop_under_test' runs more than 4096 iterations, the most one plan unrolls (its trip count is 5000)");
  });

  const gpuCondition = (body: GraphBuilder) => {
    body.node('ReduceSum', ['y_out'], ['total'], { keepdims: 0 }).node('Constant', [], ['limit'], { value: tensorAttribute('FP32', [], Float32Array.of(1.5)) });
    body.node('Less', ['total', 'limit'], ['cond_out']);
    return 'cond_out';
  };

  it('with a huge constant trip count stops where its condition from the iteration number does', () => check(
    loopModel('m', '', loopBody((body) => {
      body.node('Constant', [], ['limit'], { value: scalarInt(5) }).node('Less', ['i', 'limit'], ['cond_out']);
      return 'cond_out';
    }), (graph) => graph.initializer('m', 'INT64', [], BigInt64Array.of(9223372036854775807n))),
    loopInputs, [{ name: 'y_final', shape: [3] }, { name: 'scans', shape: [6, 3] }]));

  it('whose body computes its condition on the GPU runs its trip count masked, stopping where the condition does', async () => {
    const bytes = loopModel('m', 'c', loopBody(gpuCondition)).input('m', 'INT64', []).input('c', 'BOOL', []).toBytes({ opset: 13 });
    for (const trips of [0, 3, 7]) {
      await checkModelAgainstOrt(gpu, bytes, [...loopInputs, { name: 'm', shape: [], datatype: 'INT64', fill: () => int64([trips], []) }, bool('c')],
        [{ name: 'y_final', shape: [3] }]);
    }
  });

  it('whose body computes its condition on the GPU, without a trip count, is refused naming the value', async () => {
    const model = loopModel('', 'start', loopBody(gpuCondition), (graph) => graph.initializer('start', 'BOOL', [], Uint8Array.of(1)));
    const error = await compileError(gpu, model.toBytes({ opset: 13 }));
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("operator 'Loop' (node 'loop_under_test') is not supported with a condition its body computes on the GPU (cond_out)");
  });
});

/** A Scan body: running sum state, scan outputs sum * slice and the second slice. */
function scanBody(sliceShape: number[]): GraphBuilder {
  const body = new GraphBuilder('body').input('sum_in', 'FP32', sliceShape).input('a', 'FP32', sliceShape).input('b', 'FP32', sliceShape);
  body.node('Add', ['sum_in', 'a'], ['sum_out']).node('Mul', ['sum_out', 'b'], ['product']).node('Neg', ['b'], ['negated']);
  return body.output('sum_out', 'FP32', sliceShape).output('product', 'FP32', sliceShape).output('negated', 'FP32', sliceShape);
}

describe('Scan', () => {
  it('at opset 9+ with reversed directions and non-zero input and output axes', () => {
    const graph = new GraphBuilder('scan').input('initial', 'FP32', [2, 3]).input('a', 'FP32', [4, 2, 3]).input('b', 'FP32', [2, 4, 3]);
    graph.node('Scan', ['initial', 'a', 'b'], ['final', 'products', 'negated'], {
      body: graphAttribute(scanBody([2, 3])), num_scan_inputs: 2, scan_input_axes: [0, 1], scan_input_directions: [1, 0],
      scan_output_axes: [2, -1], scan_output_directions: [0, 1],
    });
    graph.output('final', 'FP32', [2, 3]).output('products', 'FP32', [2, 3, 4]).output('negated', 'FP32', [2, 3, 4]);
    return check(graph, [float('initial', [2, 3]), float('a', [4, 2, 3]), float('b', [2, 4, 3])],
      [{ name: 'final', shape: [2, 3] }, { name: 'products', shape: [2, 3, 4] }, { name: 'negated', shape: [2, 3, 4] }], 16);
  });

  it('at opset 8 over a batch axis, one input reversed', () => {
    const graph = new GraphBuilder('scan8').input('initial', 'FP32', [2, 3]).input('a', 'FP32', [2, 5, 3]).input('b', 'FP32', [2, 5, 3]);
    graph.node('Scan', ['', 'initial', 'a', 'b'], ['final', 'products', 'negated'], { body: graphAttribute(scanBody([3])), num_scan_inputs: 2, directions: [0, 1] });
    graph.output('final', 'FP32', [2, 3]).output('products', 'FP32', [2, 5, 3]).output('negated', 'FP32', [2, 5, 3]);
    return check(graph, [float('initial', [2, 3]), float('a', [2, 5, 3]), float('b', [2, 5, 3])],
      [{ name: 'final', shape: [2, 3] }, { name: 'products', shape: [2, 5, 3] }, { name: 'negated', shape: [2, 5, 3] }], 8);
  });
});

describe('sequence values at the API', () => {
  it('a sequence output is refused at load naming it', async () => {
    const model = new GraphBuilder('sequences').input('x', 'FP32', [2]).node('SequenceConstruct', ['x'], ['s']).output('s', 'FP32', [2]).toModel();
    // A sequence type is a TypeProto without a tensor type to this decoder.
    model.graph!.output[0].type = { denotation: '', tensorType: undefined };
    const error = await compileError(gpu, ModelProto.encode(model).finish());
    expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
    expect(error.message).toContain("graph output 's' is not a tensor (a sequence, optional or map value): KServe v2");
  });
});
