/**
 * The optimizers of the ai.onnx.preview.training domain (version 1): Momentum (standard and
 * Nesterov), Adam and Adagrad. Each takes a learning rate R and an iteration count T, then n
 * tensors to optimize, their n gradients and the n (Adam: 2n) accumulated states, and returns
 * the updated tensors and states: one elementwise formula per element, computed on the host in
 * float64 and rounded once to each output's type, as ONNX's reference writes it.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { kindOf, numberView, toNumbers } from '../tensor/index.ts';
import { attributeOf, enumAttribute, floatAttribute, invalidNode, unsupported } from './attributes.ts';
import type { CpuContext, OperatorSpec, TypeContext } from './contract.ts';
import { reserve, store } from './cpu-indexing.ts';
import { requiredValue } from './parameters.ts';

/** The domain of the training operators. */
export const TRAINING_DOMAIN = 'ai.onnx.preview.training';

/** One element's update: the tensor's value, its gradient and states in; the new value and states out. */
type Update = (x: number, g: number, states: readonly number[]) => readonly number[];

interface Optimizer {
  readonly attributes: readonly string[];
  /** Accumulated states per optimized tensor (Momentum and Adagrad 1, Adam 2). */
  readonly stateCount: number;
  /** Attributes ONNX requires (no default). */
  readonly required?: readonly string[];
  /** The per-element update for learning rate r at iteration t. */
  update(node: NodeProto, r: number, t: number): Update;
}

const momentum: Optimizer = {
  attributes: ['alpha', 'beta', 'mode', 'norm_coefficient'],
  stateCount: 1,
  required: ['alpha', 'beta', 'mode', 'norm_coefficient'],
  update(node, r, t) {
    const alpha = floatAttribute(node, 'alpha', 0);
    // The gradient's coefficient is 1 at the first iteration.
    const beta = t > 0 ? floatAttribute(node, 'beta', 0) : 1;
    const norm = floatAttribute(node, 'norm_coefficient', 0);
    const nesterov = enumAttribute(node, 'mode', ['standard', 'nesterov'], 'standard') === 'nesterov';
    return (x, g, [v]) => {
      const regularized = norm * x + g;
      const vNew = alpha * v + beta * regularized;
      return [nesterov ? x - r * (regularized + alpha * vNew) : x - r * vNew, vNew];
    };
  },
};

const adam: Optimizer = {
  attributes: ['alpha', 'beta', 'epsilon', 'norm_coefficient', 'norm_coefficient_post'],
  stateCount: 2,
  update(node, r, t) {
    const alpha = floatAttribute(node, 'alpha', 0.9);
    const beta = floatAttribute(node, 'beta', 0.999);
    const epsilon = floatAttribute(node, 'epsilon', 1e-6);
    const norm = floatAttribute(node, 'norm_coefficient', 0);
    const normPost = floatAttribute(node, 'norm_coefficient_post', 0);
    // Bias correction of both momentums from the first counted iteration on.
    const rate = t > 0 ? (r * Math.sqrt(1 - beta ** t)) / (1 - alpha ** t) : r;
    return (x, g, [v, h]) => {
      const regularized = norm * x + g;
      const vNew = alpha * v + (1 - alpha) * regularized;
      const hNew = beta * h + (1 - beta) * regularized * regularized;
      const xNew = x - (rate * vNew) / (Math.sqrt(hNew) + epsilon);
      return [(1 - normPost) * xNew, vNew, hNew];
    };
  },
};

const adagrad: Optimizer = {
  attributes: ['decay_factor', 'epsilon', 'norm_coefficient'],
  stateCount: 1,
  update(node, r, t) {
    const rate = r / (1 + t * floatAttribute(node, 'decay_factor', 0));
    const epsilon = floatAttribute(node, 'epsilon', 1e-6);
    const norm = floatAttribute(node, 'norm_coefficient', 0);
    return (x, g, [h]) => {
      const regularized = norm * x + g;
      const hNew = h + regularized * regularized;
      return [x - (rate * regularized) / (Math.sqrt(hNew) + epsilon), hNew];
    };
  },
};

/** n, the number of optimized tensors: (inputs - 2) / (2 + states), which must be whole and equal the outputs / (1 + states). */
function tensorCount(node: NodeProto, optimizer: Optimizer): number {
  const perTensor = 2 + optimizer.stateCount;
  const count = (node.input.length - 2) / perTensor;
  if (!Number.isInteger(count) || count < 1) {
    throw invalidNode(node, `has ${node.input.length} inputs; it takes R, T and ${perTensor} inputs per optimized tensor`);
  }
  if (node.output.length !== count * (1 + optimizer.stateCount)) {
    throw invalidNode(node, `has ${node.output.length} outputs; ${count} optimized tensors give ${count * (1 + optimizer.stateCount)}`);
  }
  return count;
}

/** A scalar input's value: R (a float) or T (an INT64 count). */
function scalarOf(context: CpuContext, index: number, what: string): number {
  const tensor = requiredValue(context, index);
  const values = toNumbers(tensor);
  if (values.length !== 1) throw invalidArgument(`${what} has shape [${tensor.shape}]; it must hold one value`);
  return values[0];
}

function cpuOptimizer(optimizer: Optimizer) {
  return (context: CpuContext): HostTensor[] => {
    const { node } = context;
    const count = tensorCount(node, optimizer);
    const update = optimizer.update(node, scalarOf(context, 0, 'R'), scalarOf(context, 1, 'T'));
    // Outputs: the n new tensors, then the n new values of each state in turn.
    const outputs: HostTensor[] = new Array<HostTensor>(count * (1 + optimizer.stateCount));
    for (let tensor = 0; tensor < count; tensor++) {
      const x = requiredValue(context, 2 + tensor);
      const g = requiredValue(context, 2 + count + tensor);
      const states = Array.from({ length: optimizer.stateCount }, (_, state) => requiredValue(context, 2 + (2 + state) * count + tensor));
      for (const other of [g, ...states]) {
        if (other.shape.join() !== x.shape.join()) throw invalidArgument(`input of shape [${other.shape}] does not match the optimized tensor's [${x.shape}]`);
      }
      const [xValues, gValues, ...stateValues] = [x, g, ...states].map(numberView);
      const results = Array.from({ length: 1 + optimizer.stateCount }, () => new Float64Array(xValues.length));
      const elementStates = new Array<number>(optimizer.stateCount);
      for (let index = 0; index < xValues.length; index++) {
        for (let state = 0; state < optimizer.stateCount; state++) elementStates[state] = stateValues[state][index];
        const updated = update(xValues[index], gValues[index], elementStates);
        for (let result = 0; result < results.length; result++) results[result][index] = updated[result];
      }
      results.forEach((values, result) => {
        const output = result * count + tensor;
        reserve(context, x.shape, context.outputTypes[output]);
        outputs[output] = store(context.outputTypes[output], x.shape, values);
      });
    }
    return outputs;
  };
}

function optimizerTypes(optimizer: Optimizer) {
  return ({ node, inputTypes }: TypeContext): Datatype[] => {
    const count = tensorCount(node, optimizer);
    // Output k * n + i is the new value of input (k == 0 ? X_i : state k's i-th tensor).
    return node.output.map((_, output) => {
      const state = Math.floor(output / count);
      const tensor = output % count;
      const type = inputTypes[state === 0 ? 2 + tensor : 2 + (1 + state) * count + tensor] ?? 'FP32';
      if (kindOf(type) !== 'float') throw unsupported(node, `${type} tensors (floats only)`);
      return type;
    });
  };
}

function optimizerSpec(optimizer: Optimizer): OperatorSpec {
  return {
    attributes: optimizer.attributes,
    // R, T and at least one tensor with its gradient and states; tensorCount checks the rest.
    inputs: [4 + optimizer.stateCount, Number.MAX_SAFE_INTEGER],
    outputs: [1 + optimizer.stateCount, Number.MAX_SAFE_INTEGER],
    computesEveryOutput: true,
    types: optimizerTypes(optimizer),
    validate(node) {
      tensorCount(node, optimizer);
      for (const name of optimizer.required ?? []) if (!attributeOf(node, name)) throw invalidNode(node, `needs attribute '${name}'`);
      optimizer.update(node, 0, 0);
    },
    cpu: cpuOptimizer(optimizer),
  };
}

/** The training domain's operators by op type. */
export const TRAINING_OPERATORS: ReadonlyMap<string, OperatorSpec> = new Map([
  ['Momentum', optimizerSpec(momentum)],
  ['Adam', optimizerSpec(adam)],
  ['Adagrad', optimizerSpec(adagrad)],
]);
