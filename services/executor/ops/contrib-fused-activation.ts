/**
 * The operators onnxruntime's graph optimizer leaves in a model it saves (com.microsoft):
 *   FusedConv(X, W, B?, Z?) = activation(Conv(X, W) + B + Z)
 *   FusedGemm(A, B, C?)     = activation(Gemm(A, B, C))
 * Both are the Conv / Gemm kernels with the activation (and Z as the residual) in their
 * epilogue, exactly what our own fusion builds from Conv + Add + Relu. Activations: Relu, Tanh,
 * Sigmoid, LeakyRelu, Clip (FusedConv only, as in onnxruntime), HardSigmoid, with FusedConv's
 * activation_params (alpha; min, max; alpha, beta) or FusedGemm's activation_alpha / activation_beta.
 */
import { unaryFunction, type UnaryFunction } from '../kernels/index.ts';
import type { NodeProto } from '../../onnx/model.ts';
import { attributeOf, enumAttribute, floatAttribute, invalidNode } from './attributes.ts';
import type { OperatorSpec } from './contract.ts';
import { convSpec, gemmSpec } from './gemm-conv.ts';

const ACTIVATIONS = ['Relu', 'Tanh', 'Sigmoid', 'LeakyRelu', 'Clip', 'HardSigmoid'] as const;
/** onnxruntime's FusedGemm has no Clip. */
const GEMM_ACTIVATIONS = ACTIVATIONS.filter((activation) => activation !== 'Clip');

/** The epilogue function of `activation` with its parameters in order (alpha; min, max; alpha, beta). */
function activationOf(node: NodeProto, parameters: readonly number[], allowed: ReadonlyArray<(typeof ACTIVATIONS)[number]> = ACTIVATIONS): UnaryFunction {
  if (!attributeOf(node, 'activation')) throw invalidNode(node, 'the activation attribute is required');
  const activation = enumAttribute(node, 'activation', allowed, 'Relu');
  const [first, second] = parameters;
  switch (activation) {
    case 'LeakyRelu': return unaryFunction('LeakyRelu', first === undefined ? {} : { alpha: first });
    case 'HardSigmoid': return unaryFunction('HardSigmoid', { ...(first === undefined ? {} : { alpha: first }), ...(second === undefined ? {} : { beta: second }) });
    case 'Clip': {
      if (first === undefined || second === undefined) throw invalidNode(node, 'Clip needs its min and max in the activation parameters');
      return unaryFunction('Clip', { min: first, max: second });
    }
    default: return unaryFunction(activation, {});
  }
}

export const fusedConvSpec: OperatorSpec = {
  attributes: [...convSpec.attributes, 'activation', 'activation_params'],
  inputs: [2, 4],
  types: convSpec.types,
  validate(node) {
    activationOf(node, attributeOf(node, 'activation_params')?.floats ?? []);
  },
  device(context) {
    const { node } = context;
    const activation = activationOf(node, attributeOf(node, 'activation_params')?.floats ?? []);
    return convSpec.device!({ ...context, epilogue: { activation, residual: node.input[3] ? 3 : undefined } });
  },
};

/** FusedGemm's activation parameters: activation_alpha, then activation_beta, as far as given. */
const gemmParameters = (node: NodeProto): number[] =>
  ['activation_alpha', 'activation_beta'].filter((name) => attributeOf(node, name)).map((name) => floatAttribute(node, name, 0));

export const fusedGemmSpec: OperatorSpec = {
  attributes: [...gemmSpec.attributes, 'activation', 'activation_alpha', 'activation_beta', 'activation_gamma'],
  inputs: [2, 3],
  types: gemmSpec.types,
  validate(node) {
    activationOf(node, gemmParameters(node), GEMM_ACTIVATIONS);
  },
  device: (context) => gemmSpec.device!({ ...context, epilogue: { activation: activationOf(context.node, gemmParameters(context.node), GEMM_ACTIVATIONS) } }),
};
