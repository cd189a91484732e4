/**
 * The com.microsoft element-wise fusions ORT's transformer optimizer emits, as the default-domain
 * kernels they stand for:
 *   Gelu(X)             = 0.5 X (1 + erf(X / sqrt 2))                       (ONNX Gelu, approximate 'none')
 *   FastGelu(X, bias?)  = 0.5 X' (1 + tanh(sqrt(2/pi) (X' + 0.044715 X'^3))), X' = X + bias  (approximate 'tanh')
 *   BiasGelu(A, B)      = Gelu(A + B)                                       (one Add with Gelu in its epilogue)
 *   QuickGelu(X)        = X sigmoid(alpha X), alpha 1.702 by default
 *   BiasAdd(X, b, skip) = X + b + skip
 *   BiasSoftmax(x, b)   = Softmax(x + b) over the dims from `axis` (default 1), flattened as Softmax-1 did
 * Each bias is a 1-D tensor of the last dim (BiasSoftmax's broadcasts as its is_inner_broadcast says).
 */
import { invalidArgument } from '../../domain/errors.ts';
import { UNARY_OPS, type UnaryFunction } from '../kernels/index.ts';
import { broadcastShapes, sameShape } from '../tensor/index.ts';
import { booleanAttribute, floatAttribute, intAttribute } from './attributes.ts';
import type { NodeInput, OperatorSpec } from './contract.ts';
import { binarySpec, unarySpec } from './elementwise.ts';
import { required } from './parameters.ts';
import { softmaxSpec } from './softmax.ts';
import { fp32, sameAsInput } from './spec-parts.ts';
import { sumSpec } from './variadic.ts';
import { createComposite, intAttr, stringAttr } from './contrib-composite.ts';

const GELU: UnaryFunction = { op: UNARY_OPS.Gelu, alpha: 0, beta: 0 };
const GELU_TANH: UnaryFunction = { op: UNARY_OPS.GeluTanh, alpha: 0, beta: 0 };
const SIGMOID: UnaryFunction = { op: UNARY_OPS.Sigmoid, alpha: 0, beta: 0 };

const addSpec = binarySpec('Add');
const mulSpec = binarySpec('Mul');

/** INVALID_ARGUMENT unless input `index` is 1-D with the last dim of input 0. */
function checkLastDimBias(op: string, inputs: ReadonlyArray<NodeInput | undefined>, index: number, what: string): void {
  const shape = required(inputs, 0).shape;
  const bias = required(inputs, index).shape;
  if (bias.length !== 1 || bias[0] !== shape[shape.length - 1]) {
    throw invalidArgument(`${op} ${what} has shape [${bias}]; it must be 1-D with the input's last dim (${shape[shape.length - 1]}) of input [${shape}]`);
  }
}

/** Gelu (com.microsoft): the exact erf form, as ONNX's Gelu without `approximate`. */
const onnxGelu = unarySpec('Gelu');
export const geluSpec: OperatorSpec = { ...onnxGelu, attributes: [], validate: undefined };

/** An Add of a last-dim bias with `activation` in its epilogue: one dispatch. */
function biasActivationSpec(op: string, activation: UnaryFunction, minInputs: 1 | 2, plain: OperatorSpec): OperatorSpec {
  return {
    attributes: [],
    inputs: [minInputs, 2],
    types: sameAsInput,
    device(context) {
      const program = createComposite(context);
      const [x, bias] = [program.input(0), program.input(1)];
      if (!bias) {
        program.stage(plain, 'Gelu', [x], [program.output(0)], { attributes: [stringAttr('approximate', 'tanh')] });
        return program.build();
      }
      program.check((inputs) => checkLastDimBias(op, inputs, 1, 'bias'));
      program.stage(addSpec, 'Add', [x, bias], [program.output(0)], { epilogue: { activation } });
      return program.build();
    },
  };
}

export const fastGeluSpec = biasActivationSpec('FastGelu', GELU_TANH, 1, onnxGelu);
export const biasGeluSpec = biasActivationSpec('BiasGelu', GELU, 2, onnxGelu);

export const quickGeluSpec: OperatorSpec = {
  attributes: ['alpha'],
  inputs: [1, 1],
  types: sameAsInput,
  device(context) {
    const program = createComposite(context);
    const x = program.input(0);
    const alpha = program.constant('alpha', fp32([], Float32Array.of(floatAttribute(context.node, 'alpha', 1.702))));
    // sigmoid(alpha x) is an Add-free Mul with Sigmoid in its epilogue; the second Mul weighs x by it.
    const gate = program.temp();
    program.stage(mulSpec, 'Mul', [x, alpha], [gate], { epilogue: { activation: SIGMOID } });
    program.stage(mulSpec, 'Mul', [x, gate], [program.output(0)]);
    return program.build();
  },
};

export const biasAddSpec: OperatorSpec = {
  attributes: [],
  inputs: [3, 3],
  types: sameAsInput,
  device(context) {
    const program = createComposite(context);
    program.check((inputs) => {
      const shape = required(inputs, 0).shape;
      if (shape.length !== 3) throw invalidArgument(`BiasAdd input has shape [${shape}]; it must be 3-D (N, S, C)`);
      checkLastDimBias('BiasAdd', inputs, 1, 'bias');
      const skip = required(inputs, 2).shape;
      if (!sameShape(skip, shape)) throw invalidArgument(`BiasAdd skip has shape [${skip}]; it must have the input's shape [${shape}]`);
    });
    // Sum folds left to right through one scratch tensor: (X + bias) + skip.
    program.stage(sumSpec, 'Sum', [program.input(0), program.input(1), program.input(2)], [program.output(0)]);
    return program.build();
  },
};

export const biasSoftmaxSpec: OperatorSpec = {
  attributes: ['axis', 'is_inner_broadcast'],
  inputs: [2, 2],
  types: sameAsInput,
  device(context) {
    const { node } = context;
    const axis = intAttribute(node, 'axis', 1);
    const inner = booleanAttribute(node, 'is_inner_broadcast');
    const program = createComposite(context);
    program.check((inputs) => {
      const shape = required(inputs, 0).shape;
      const bias = required(inputs, 1).shape;
      // Numpy broadcasting aligns trailing dims (outer broadcast); an inner broadcast keeps the rank with 1s in the middle.
      const fits = (() => {
        try { return sameShape(broadcastShapes(shape, bias), shape) && (!inner || bias.length === shape.length); } catch { return false; }
      })();
      if (!fits) throw invalidArgument(`BiasSoftmax bias [${bias}] does not broadcast to data [${shape}]${inner ? ' with is_inner_broadcast=1 (same rank, 1 on the broadcast dims)' : ''}`);
    });
    const sum = program.temp();
    program.stage(addSpec, 'Add', [program.input(0), program.input(1)], [sum]);
    // Softmax-1's semantics: the dims from `axis` on are one row.
    program.stage(softmaxSpec(false), 'Softmax', [sum], [program.output(0)], { attributes: [intAttr('axis', axis)], opset: 12 });
    return program.build();
  },
};
