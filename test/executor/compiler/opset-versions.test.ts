/**
 * Operator versions without a GPU: which since_version is in effect at an opset, old spellings
 * rewritten into the modern form the specs check, and the versions we refuse named with what
 * changed. Also through placeModel, so the compiler applies the table to every node.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { placeModel } from '../../../services/executor/compiler/index.ts';
import { operatorSpec } from '../../../services/executor/ops/index.ts';
import { MAX_OPSET, resolveOperatorVersion, sinceVersionOf, VERSIONED_OPERATORS } from '../../../services/executor/ops/opset-versions.ts';
import { GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';
import type { NodeProto } from '../../../services/onnx/model.ts';
import { AttributeProto_AttributeType as AttributeType } from '../../../services/protocol/generated/onnx/onnx.ts';

/** The single node of a one-node graph, as the decoder would hand it over. */
function nodeOf(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}): NodeProto {
  const builder = new GraphBuilder('one').node(opType, inputs, ['y'], attributes, `${opType.toLowerCase()}_node`);
  return builder.toModel().graph!.node[0];
}

/** The FAILED_PRECONDITION `action` throws (the test fails when it does not throw). */
function refusal(action: () => unknown): NexusError {
  let thrown: unknown;
  try {
    action();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(NexusError);
  expect((thrown as NexusError).code).toBe(ErrorCode.FAILED_PRECONDITION);
  return thrown as NexusError;
}

const attributeNames = (node: NodeProto) => node.attribute.map((attribute) => attribute.name).sort();

describe('the version in effect', () => {
  it.each<[string, number, number | undefined]>([
    ['Relu', 28, 14], ['Relu', 13, 13], ['Relu', 12, 6], ['Relu', 5, 1],
    ['Cast', 28, 25], ['Cast', 22, 21], ['Cast', 8, 6],
    ['Reshape', 26, 25], ['Reshape', 4, 1],
    ['Range', 26, 11], ['Range', 27, 27], ['Range', 28, 27], ['Range', 10, undefined],
    ['Softmax', 12, 11], ['Softmax', 28, 13],
    ['Conv', 21, 11], ['Conv', 22, 22],
    ['Gelu', 19, undefined], ['Gelu', 20, 20],
    ['Sin', 21, 7], ['Sin', 22, 22], ['CastLike', 28, 25], ['Sum', 7, 6], ['Sum', 8, 8], ['Mod', 9, undefined],
    ['BatchNormalization', 6, 6], ['BatchNormalization', 8, 7], ['BatchNormalization', 28, 15],
    // Not in the table: every version is taken as covered.
    ['SomeLaterOperator', 28, undefined],
  ])('%s at opset %i is version %s', (opType, opset, since) => {
    expect(sinceVersionOf(opType, opset)).toBe(since);
  });

  it('knows the opsets up to 28', () => expect(MAX_OPSET).toBe(28));

  it('lists only operators the registry runs, each defined at opset 28', () => {
    expect(VERSIONED_OPERATORS.length).toBeGreaterThan(80);
    for (const opType of VERSIONED_OPERATORS) {
      expect(() => operatorSpec(nodeOf(opType, ['x'])), opType).not.toThrow();
      expect(sinceVersionOf(opType, 28), opType).toBeDefined();
    }
  });
});

describe('old spellings in their modern form', () => {
  it("drops opset 1's consumed_inputs, which only allowed computing in place", () => {
    const node = nodeOf('Relu', ['x'], { consumed_inputs: [0] });
    expect(attributeNames(resolveOperatorVersion(node, 5))).toEqual([]);
    // From opset 6 the attribute does not exist; the spec refuses it as any unknown attribute.
    expect(attributeNames(resolveOperatorVersion(node, 6))).toEqual(['consumed_inputs']);
  });

  it('BatchNormalization before opset 7 with is_test=1 is inference: is_test and consumed_inputs go', () => {
    const node = nodeOf('BatchNormalization', ['x', 's', 'b', 'm', 'v'], { is_test: 1, consumed_inputs: [0, 0, 0, 1, 1], epsilon: 0.001, spatial: 1 });
    expect(attributeNames(resolveOperatorVersion(node, 5))).toEqual(['epsilon', 'spatial']);
    expect(attributeNames(resolveOperatorVersion(nodeOf('BatchNormalization', ['x', 's', 'b', 'm', 'v'], { is_test: 1 }), 6))).toEqual([]);
  });

  it("Cast-1's type name becomes Cast-6's TensorProto code", () => {
    const to = resolveOperatorVersion(nodeOf('Cast', ['x'], { to: 'int64' }), 5).attribute[0];
    expect([to.name, to.type, Number(to.i)]).toEqual(['to', AttributeType.INT, 7]);
    expect(refusal(() => resolveOperatorVersion(nodeOf('Cast', ['x'], { to: 'COMPLEX64' }), 5)).message)
      .toBe("operator 'Cast' version 1 (node 'cast_node', opset 5) is not supported: to='COMPLEX64', a type name Cast-1 does not define");
  });

  it("Pad-1's paddings become pads; Concat-1 without axis concatenates along 1", () => {
    const pad = resolveOperatorVersion(nodeOf('Pad', ['x'], { paddings: [0, 1, 0, 1], mode: 'constant' }), 1);
    expect(attributeNames(pad)).toEqual(['mode', 'pads']);
    expect(pad.attribute.find((attribute) => attribute.name === 'pads')!.ints.map(Number)).toEqual([0, 1, 0, 1]);
    const concat = resolveOperatorVersion(nodeOf('Concat', ['a', 'b']), 3);
    expect(concat.attribute.map((attribute) => [attribute.name, Number(attribute.i)])).toEqual([['axis', 1]]);
    // Concat-4 requires the attribute; nothing is invented there.
    expect(resolveOperatorVersion(nodeOf('Concat', ['a', 'b']), 4).attribute).toEqual([]);
  });

  it('Add before opset 7 with broadcast=1 is numpy broadcasting', () => {
    expect(attributeNames(resolveOperatorVersion(nodeOf('Add', ['a', 'b'], { broadcast: 1 }), 6))).toEqual([]);
  });

  it('returns the node itself where nothing changed', () => {
    const node = nodeOf('MatMul', ['a', 'b']);
    expect(resolveOperatorVersion(node, 28)).toBe(node);
  });
});

describe('refused versions name the operator, its version and what changed', () => {
  it.each<[string, NodeProto, number, string]>([
    ['BatchNormalization without is_test at opset 6', nodeOf('BatchNormalization', ['x', 's', 'b', 'm', 'v']), 6,
      "operator 'BatchNormalization' version 6 (node 'batchnormalization_node', opset 6) is not supported: is_test=0 (the default before opset 7): training mode"],
    ['Tile at opset 5', nodeOf('Tile', ['x', 'tiles', 'axis']), 5, "operator 'Tile' version 1 (node 'tile_node', opset 5) is not supported: Tile-1 repeated along one axis"],
    ['PRelu at opset 6', nodeOf('PRelu', ['x', 'slope']), 6, "operator 'PRelu' version 6 (node 'prelu_node', opset 6) is not supported: Slope was either one shared value or one per channel"],
    ['Add with axis at opset 6', nodeOf('Add', ['a', 'b'], { broadcast: 1, axis: 1 }), 6, "operator 'Add' version 6 (node 'add_node', opset 6) is not supported: 'axis' aligned B with A"],
    ['Split with a second input at opset 1', nodeOf('Split', ['x', 'sizes']), 1, "operator 'Split' version 1 (node 'split_node', opset 1) is not supported: split sizes from a second input"],
    ['ConvTranspose with output_shape at opset 10', nodeOf('ConvTranspose', ['x', 'w'], { output_shape: [5, 5] }), 10,
      "operator 'ConvTranspose' version 1 (node 'convtranspose_node', opset 10) is not supported: output_shape or auto_pad SAME before opset 11"],
    ['ConvTranspose with dilations at opset 9', nodeOf('ConvTranspose', ['x', 'w'], { dilations: [2, 2] }), 9, 'dilations before opset 11'],
    ['Gelu at opset 19', nodeOf('Gelu', ['x']), 19, "operator 'Gelu' (node 'gelu_node') does not exist at opset 19: ONNX defines it from opset 20"],
  ])('%s', (_case, node, opset, message) => {
    expect(refusal(() => resolveOperatorVersion(node, opset)).message).toContain(message);
  });

  it('covers the same operators at the versions after the change', () => {
    expect(() => resolveOperatorVersion(nodeOf('Tile', ['x', 'repeats']), 6)).not.toThrow();
    expect(() => resolveOperatorVersion(nodeOf('PRelu', ['x', 'slope']), 7)).not.toThrow();
    expect(() => resolveOperatorVersion(nodeOf('ConvTranspose', ['x', 'w'], { output_shape: [5, 5] }), 11)).not.toThrow();
    expect(() => resolveOperatorVersion(nodeOf('ConvTranspose', ['x', 'w'], { pads: [1, 1, 1, 1] }), 10)).not.toThrow();
  });
});

describe('placeModel applies the table to every node', () => {
  const bnModel = (attributes: Record<string, AttributeValue>) => {
    const graph = new GraphBuilder('bn').input('x', 'FP32', [1, 2, 3]);
    for (const name of ['s', 'b', 'm', 'v']) graph.initializer(name, 'FP32', [2], Float32Array.of(1, 2));
    return graph.node('BatchNormalization', ['x', 's', 'b', 'm', 'v'], ['y'], attributes, 'bn').output('y', 'FP32', [1, 2, 3]);
  };

  it('places an opset-6 BatchNormalization with is_test=1, and refuses one in training mode', () => {
    expect(placeModel(bnModel({ is_test: 1, epsilon: 0.001 }).toModel({ opset: 6 })).graph.nodes).toHaveLength(1);
    expect(refusal(() => placeModel(bnModel({ is_test: 0 }).toModel({ opset: 6 }))).message).toContain("operator 'BatchNormalization' version 6 (node 'bn', opset 6)");
  });

  it('refuses an opset beyond 28 and places one at 28', () => {
    const graph = new GraphBuilder('relu').input('x', 'FP32', [2]).node('Relu', ['x'], ['y']).output('y', 'FP32', [2]);
    expect(placeModel(graph.toModel({ opset: 28 })).opset).toBe(28);
    expect(refusal(() => placeModel(graph.toModel({ opset: 29 }))).message).toBe('the model imports ONNX opset 29; this executor knows the operators up to opset 28');
  });

  it('refuses a string input, and takes every numeric and boolean one', () => {
    for (const datatype of ['BOOL', 'UINT8', 'INT8', 'UINT16', 'INT16', 'UINT32', 'INT32', 'UINT64', 'INT64', 'FP16', 'BF16', 'FP32', 'FP64'] as const) {
      const graph = new GraphBuilder('id').input('x', datatype, [2]).node('Identity', ['x'], ['y']).output('y', datatype, [2]);
      expect(placeModel(graph.toModel({ opset: 21 })).signature.inputs[0].datatype).toBe(datatype);
    }
    const strings = new GraphBuilder('id').input('x', 'BYTES', [2]).node('Identity', ['x'], ['y']).output('y', 'BYTES', [2]);
    expect(refusal(() => placeModel(strings.toModel({ opset: 21 }))).message).toBe("input 'x' is BYTES; the GPU executor computes numbers and booleans, not strings");
  });
});
