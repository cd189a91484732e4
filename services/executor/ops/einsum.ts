/**
 * Einsum (opset 12) of one or two operands: matrix products, batched products, transposes,
 * reductions, outer products, diagonals and traces (a label repeated in one operand walks the
 * diagonal), explicit or implicit output, and ellipsis broadcasting. Each label gets a dim and
 * each operand a stride over it; the GPU kernel sums over the contracted labels
 * (shaders/einsum/einsum.wgsl), and the CPU implementation folds constants by the same walk.
 */
import type { HostTensor } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import { einsumDispatch, einsumVariant, type EinsumProblem } from '../kernels/einsum.ts';
import { kindOf, numberView, product, showShape, stridesOf } from '../tensor/index.ts';
import { stringAttribute, unsupported } from './attributes.ts';
import type { CpuContext, OperatorSpec } from './contract.ts';
import { reserve, store } from './cpu-indexing.ts';
import { requiredValue } from './parameters.ts';
import { inputStorage, sameAsInput } from './spec-parts.ts';

/** An equation's terms: one per input, and the output's (undefined when implicit). */
interface Equation {
  readonly inputs: readonly string[];
  readonly output: string | undefined;
}

/** Parses "ij,jk->ik"; FAILED_PRECONDITION-worthy problems are reported as messages. */
export function parseEquation(text: string): Equation | string {
  const equation = text.replace(/\s+/g, '');
  const [left, right, extra] = equation.split('->');
  if (extra !== undefined || left === undefined) return `equation '${text}' has more than one '->'`;
  const terms = [...left.split(','), ...(right === undefined ? [] : [right])];
  for (const term of terms) {
    if (!/^[A-Za-z]*(\.\.\.)?[A-Za-z]*$/.test(term)) return `equation '${text}': term '${term}' is not letters with at most one '...'`;
  }
  if (right !== undefined && new Set(right.replace('...', '')).size !== right.replace('...', '').length) return `equation '${text}' repeats a label in its output`;
  return { inputs: left.split(','), output: right };
}

/** A term's labels for an operand of `rank`: its letters, with '...' standing for ellipsis labels '0', '1', ... aligned right. */
function labelsOf(term: string, rank: number, ellipsisRank: number): string[] {
  const [before, after] = term.includes('...') ? term.split('...') : [term, undefined];
  if (after === undefined) {
    if (before.length !== rank) throw invalidArgument(`Einsum term '${term}' has ${before.length} labels for an operand of rank ${rank}`);
    return [...before];
  }
  const covered = rank - before.length - after.length;
  if (covered < 0) throw invalidArgument(`Einsum term '${term}' has more labels than its operand's rank ${rank}`);
  return [...before, ...Array.from({ length: covered }, (_, index) => String(ellipsisRank - covered + index)), ...after];
}

/** Every label's dim and each operand's strides over the output and contracted labels. */
export function einsumProblem(equation: Equation, shapes: ReadonlyArray<readonly number[]>): EinsumProblem {
  const ellipsisRank = Math.max(0, ...equation.inputs.map((term, index) => (term.includes('...') ? shapes[index].length - term.replace('...', '').length : 0)));
  const operandLabels = equation.inputs.map((term, index) => labelsOf(term, shapes[index].length, ellipsisRank));
  const dims = new Map<string, number>();
  operandLabels.forEach((labels, operand) => labels.forEach((label, axis) => {
    const dim = shapes[operand][axis];
    const known = dims.get(label);
    const ellipsis = /^\d/.test(label);
    if (known === undefined || (ellipsis && known === 1)) dims.set(label, dim);
    else if (dim !== known && !(ellipsis && dim === 1)) {
      throw invalidArgument(`Einsum label '${ellipsis ? '...' : label}' has dims ${known} and ${dim} (${shapes.map(showShape).join(', ')})`);
    }
  }));
  const ellipsisLabels = Array.from({ length: ellipsisRank }, (_, index) => String(index));
  let outLabels: string[];
  if (equation.output === undefined) {
    const counts = new Map<string, number>();
    for (const label of operandLabels.flat()) if (!/^\d/.test(label)) counts.set(label, (counts.get(label) ?? 0) + 1);
    outLabels = [...ellipsisLabels, ...[...counts].filter(([, count]) => count === 1).map(([label]) => label).sort()];
  } else {
    const [before, after] = equation.output.includes('...') ? equation.output.split('...') : [equation.output, undefined];
    if (after === undefined && ellipsisRank > 0) throw invalidArgument(`Einsum output '${equation.output}' drops the '...' dims of its inputs`);
    outLabels = after === undefined ? [...before] : [...before, ...ellipsisLabels, ...after];
    for (const label of outLabels) if (!dims.has(label)) throw invalidArgument(`Einsum output label '${label}' is in no input`);
  }
  const reduceLabels = [...dims.keys()].filter((label) => !outLabels.includes(label));
  // An operand's stride for a label: the sum over its axes with that label (0 where it lacks the label or broadcasts a 1).
  const strideFor = (operand: number, label: string) => {
    const strides = stridesOf(shapes[operand]);
    return operandLabels[operand].reduce((total, axisLabel, axis) => total + (axisLabel === label && shapes[operand][axis] !== 1 ? strides[axis] : 0), 0);
  };
  const operands = [0, operandLabels.length > 1 ? 1 : 0];
  return {
    outShape: outLabels.map((label) => dims.get(label)!),
    outStrides: [outLabels.map((label) => strideFor(operands[0], label)), outLabels.map((label) => strideFor(operands[1], label))],
    reduceShape: reduceLabels.map((label) => dims.get(label)!),
    reduceStrides: [reduceLabels.map((label) => strideFor(operands[0], label)), reduceLabels.map((label) => strideFor(operands[1], label))],
  };
}

function equationOf(node: CpuContext['node']): Equation {
  const parsed = parseEquation(stringAttribute(node, 'equation', ''));
  if (typeof parsed === 'string') throw unsupported(node, parsed);
  return parsed;
}

function cpuEinsum(context: CpuContext): HostTensor[] {
  const equation = equationOf(context.node);
  const operands = context.inputs.map((_, index) => requiredValue(context, index));
  const problem = einsumProblem(equation, operands.map((operand) => operand.shape));
  reserve(context, problem.outShape, context.outputTypes[0]);
  const [a, b] = [numberView(operands[0]), numberView(operands[operands.length > 1 ? 1 : 0])];
  const outCount = product(problem.outShape);
  const reduceCount = product(problem.reduceShape);
  const result = new Float64Array(outCount);
  const offsetOf = (flat: number, shape: readonly number[], strides: readonly number[]) => {
    let rest = flat;
    let offset = 0;
    for (let dim = shape.length - 1; dim >= 0; dim--) {
      offset += (rest % shape[dim]) * strides[dim];
      rest = Math.floor(rest / shape[dim]);
    }
    return offset;
  };
  for (let index = 0; index < outCount; index++) {
    const [aBase, bBase] = [0, 1].map((operand) => offsetOf(index, problem.outShape, problem.outStrides[operand]));
    let sum = 0;
    for (let r = 0; r < reduceCount; r++) {
      const aValue = a[aBase + offsetOf(r, problem.reduceShape, problem.reduceStrides[0])];
      sum += operands.length > 1 ? aValue * b[bBase + offsetOf(r, problem.reduceShape, problem.reduceStrides[1])] : aValue;
    }
    result[index] = sum;
  }
  return [store(context.outputTypes[0], problem.outShape, result)];
}

export const einsumSpec: OperatorSpec = {
  attributes: ['equation'],
  inputs: [1, 2 ** 31],
  types: sameAsInput,
  validate(node) {
    const equation = equationOf(node);
    if (equation.inputs.length !== node.input.length) throw unsupported(node, `equation '${stringAttribute(node, 'equation', '')}' with ${equation.inputs.length} terms for ${node.input.length} inputs`);
    if (node.input.length > 2) throw unsupported(node, `${node.input.length} inputs (at most 2; contract the others in separate Einsum nodes)`);
  },
  cpu: cpuEinsum,
  device(context) {
    const equation = equationOf(context.node);
    const datatype = context.inputs[0].datatype!;
    if (kindOf(datatype) === 'bool') throw unsupported(context.node, 'BOOL inputs');
    const operands = context.inputs.length === 1 ? 1 : 2;
    return {
      kind: 'kernel',
      variants: [einsumVariant(inputStorage(context, 0), operands)],
      plan(inputs, maxPerDimension) {
        const problem = einsumProblem(equation, inputs.map((input) => input!.shape));
        return {
          outputShapes: [[...problem.outShape]],
          dispatches: [{ ...einsumDispatch(problem, maxPerDimension), bindings: [{ input: 0 }, { input: operands === 2 ? 1 : 0 }, { output: 0 }] }],
        };
      },
    };
  },
};
