/**
 * The data-movement operators on the GPU: Transpose, Concat, Split, Slice, Expand and Tile as
 * strided copies, Gather and Pad with their own kernels. Each also evaluates on the CPU for
 * constants and shape computations.
 */
import { invalidArgument } from '../../domain/errors.ts';
import {
  COPY_MAX_RANK, copyDispatch, type CopyProblem, copyVariants, gatherDispatch, gatherVariant, PAD_MODES, padDispatch, type PadMode,
  padVariant,
} from '../kernels/index.ts';
import {
  broadcastShapes, broadcastStrides, concatShape, gatherShape, kindOf, mergeDims, normalizeAxis, padAmounts, product, sliceAxes,
  splitSizes, stridesOf, tileShape, toNumbers, transposeShape,
} from '../tensor/index.ts';
import { enumAttribute, intAttribute, intsAttribute, unsupported } from './attributes.ts';
import type { BindingRef, DeviceOperator, LoadContext, OperatorSpec, PlannedKernel } from './contract.ts';
import { cpuConcat, cpuExpand, cpuGather, cpuPad, cpuSlice, cpuSplit, cpuTile, cpuTranspose } from './cpu-data-movement.ts';
import { padParameters, parameterValue, required, sliceParameters, splitOf } from './parameters.ts';
import { inputStorage, io, sameAsInput } from './spec-parts.ts';


/**
 * Copy dispatches from input `input` into output `output`: one, unless the walk has more separate
 * dims than the copy kernel unravels (a rank-5 Tile walks 10); then the outermost dims are peeled
 * off, one dispatch per index with its own offsets.
 */
function copyKernels(
  problem: CopyProblem, maxPerDimension: number, input: BindingRef = { input: 0 }, output: BindingRef = { output: 0 },
): PlannedKernel[] {
  if (product(problem.shape) === 0) return [];
  if (mergeDims(problem.shape, [problem.inStrides, problem.outStrides]).shape.length <= COPY_MAX_RANK) {
    return [{ ...copyDispatch(problem, maxPerDimension), bindings: [input, output] }];
  }
  const [size, ...shape] = problem.shape;
  const [inStride, ...inStrides] = problem.inStrides;
  const [outStride, ...outStrides] = problem.outStrides;
  return Array.from({ length: size }, (_, index) => copyKernels({
    shape, inStrides, outStrides, inOffset: problem.inOffset + index * inStride, outOffset: problem.outOffset + index * outStride,
  }, maxPerDimension, input, output)).flat();
}

function copyOperator(context: LoadContext, plan: DeviceOperator['plan']): DeviceOperator {
  return { kind: 'kernel', variants: copyVariants(inputStorage(context, 0)), plan };
}

export const transposeSpec: OperatorSpec = {
  attributes: ['perm'],
  inputs: [1, 1],
  types: sameAsInput,
  cpu: cpuTranspose,
  device(context) {
    const perm = intsAttribute(context.node, 'perm');
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shape = required(inputs, 0).shape;
      const { outShape, perm: order } = transposeShape(shape, perm);
      const strides = stridesOf(shape);
      return {
        outputShapes: [outShape],
        dispatches: copyKernels({ shape: outShape, inStrides: order.map((axis) => strides[axis]), outStrides: stridesOf(outShape), inOffset: 0, outOffset: 0 }, maxPerDimension),
      };
    });
  },
};

export const concatSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [1, 2 ** 31],
  types: sameAsInput,
  cpu: cpuConcat,
  device(context) {
    const axisAttribute = intAttribute(context.node, 'axis', 0);
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shapes = inputs.map((input) => input!.shape);
      const { outShape, axis } = concatShape(shapes, axisAttribute);
      const outStrides = stridesOf(outShape);
      let offset = 0;
      const dispatches: PlannedKernel[] = [];
      shapes.forEach((shape, index) => {
        if (product(shape) > 0) {
          dispatches.push(...copyKernels({ shape, inStrides: stridesOf(shape), outStrides, inOffset: 0, outOffset: offset * outStrides[axis] }, maxPerDimension, { input: index }));
        }
        offset += shape[axis];
      });
      return { outputShapes: [outShape], dispatches };
    });
  },
};

export const splitSpec: OperatorSpec = {
  attributes: ['axis', 'split', 'num_outputs'],
  inputs: [1, 2],
  outputs: [1, 2 ** 31],
  parameters: [1],
  types: ({ node, inputTypes }) => node.output.map(() => inputTypes[0] ?? 'FP32'),
  cpu: cpuSplit,
  device(context) {
    const { node, opset } = context;
    const axisAttribute = intAttribute(node, 'axis', 0);
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shape = required(inputs, 0).shape;
      const axis = normalizeAxis(axisAttribute, shape.length);
      const sizes = splitSizes(shape[axis], node.output.length, splitOf(node, opset, inputs));
      const strides = stridesOf(shape);
      let start = 0;
      const outputShapes: number[][] = [];
      const dispatches: PlannedKernel[] = [];
      sizes.forEach((size, output) => {
        const outShape = [...shape];
        outShape[axis] = size;
        outputShapes.push(outShape);
        if (product(outShape) > 0) {
          dispatches.push(...copyKernels({ shape: outShape, inStrides: strides, outStrides: stridesOf(outShape), inOffset: start * strides[axis], outOffset: 0 }, maxPerDimension, { input: 0 }, { output }));
        }
        start += size;
      });
      return { outputShapes, dispatches };
    });
  },
};

export const sliceSpec: OperatorSpec = {
  attributes: ['starts', 'ends', 'axes'],
  inputs: [1, 5],
  parameters: [1, 2, 3, 4],
  types: sameAsInput,
  cpu: cpuSlice,
  device(context) {
    const { node, opset } = context;
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shape = required(inputs, 0).shape;
      const { starts, ends, axes, steps } = sliceParameters(node, opset, inputs);
      const sliced = sliceAxes(shape, starts, ends, axes, steps);
      const strides = stridesOf(shape);
      const outShape = sliced.map((axis) => axis.count);
      const offset = product(outShape) === 0 ? 0 : sliced.reduce((total, axis, dim) => total + axis.start * strides[dim], 0);
      return {
        outputShapes: [outShape],
        dispatches: copyKernels({
          shape: outShape, inStrides: sliced.map((axis, dim) => axis.step * strides[dim]), outStrides: stridesOf(outShape), inOffset: offset, outOffset: 0,
        }, maxPerDimension),
      };
    });
  },
};

export const expandSpec: OperatorSpec = {
  attributes: [],
  inputs: [2, 2],
  parameters: [1],
  types: sameAsInput,
  cpu: cpuExpand,
  device(context) {
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shape = required(inputs, 0).shape;
      const target = parameterValue(inputs, 1);
      if (!target) throw invalidArgument('Expand needs its shape');
      const outShape = broadcastShapes(shape, toNumbers(target));
      return {
        outputShapes: [outShape],
        dispatches: copyKernels({ shape: outShape, inStrides: broadcastStrides(shape, outShape), outStrides: stridesOf(outShape), inOffset: 0, outOffset: 0 }, maxPerDimension),
      };
    });
  },
};

export const tileSpec: OperatorSpec = {
  attributes: [],
  inputs: [2, 2],
  parameters: [1],
  types: sameAsInput,
  cpu: cpuTile,
  device(context) {
    return copyOperator(context, (inputs, maxPerDimension) => {
      const shape = required(inputs, 0).shape;
      const repeats = parameterValue(inputs, 1);
      if (!repeats) throw invalidArgument('Tile needs its repeats');
      const counts = toNumbers(repeats);
      const outShape = tileShape(shape, counts);
      // Each dim d becomes [repeats_d, shape_d]: the repeat walks the output with stride
      // shape_d * outStride_d and the input with stride 0.
      const inStrides = stridesOf(shape);
      const outStrides = stridesOf(outShape);
      const walk: number[] = [];
      const inWalk: number[] = [];
      const outWalk: number[] = [];
      shape.forEach((dim, axis) => {
        walk.push(counts[axis], dim);
        inWalk.push(0, inStrides[axis]);
        outWalk.push(dim * outStrides[axis], outStrides[axis]);
      });
      return {
        outputShapes: [outShape],
        dispatches: copyKernels({ shape: walk, inStrides: inWalk, outStrides: outWalk, inOffset: 0, outOffset: 0 }, maxPerDimension),
      };
    });
  },
};

export const gatherSpec: OperatorSpec = {
  attributes: ['axis'],
  inputs: [2, 2],
  types: sameAsInput,
  cpu: cpuGather,
  device(context) {
    const axisAttribute = intAttribute(context.node, 'axis', 0);
    if (kindOf(context.inputs[1].datatype!) !== 'int') throw unsupported(context.node, `${context.inputs[1].datatype} indices`);
    return {
      kind: 'kernel',
      variants: [gatherVariant(inputStorage(context, 0))],
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        const indicesShape = required(inputs, 1).shape;
        const { outShape, axis } = gatherShape(shape, indicesShape, axisAttribute);
        return {
          outputShapes: [outShape],
          dispatches: [{
            ...gatherDispatch(product(shape.slice(0, axis)), shape[axis], product(indicesShape), product(shape.slice(axis + 1)), maxPerDimension),
            bindings: io(2),
          }],
        };
      },
    };
  },
};

export const padSpec: OperatorSpec = {
  attributes: ['mode', 'pads', 'value'],
  inputs: [1, 4],
  parameters: [1, 2, 3],
  types: sameAsInput,
  validate(node) {
    enumAttribute(node, 'mode', ['constant', 'reflect', 'edge', 'wrap'], 'constant');
  },
  cpu: cpuPad,
  device(context) {
    const { node, opset } = context;
    const mode = enumAttribute(node, 'mode', Object.keys(PAD_MODES) as PadMode[], 'constant');
    return {
      kind: 'kernel',
      variants: [padVariant(inputStorage(context, 0))],
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        const { pads, value, axes } = padParameters(node, opset, inputs);
        const { begin, end, outShape } = padAmounts(shape, pads, axes);
        if (mode !== 'constant' && product(shape) === 0 && product(outShape) > 0) throw invalidArgument(`Pad mode '${mode}' of an empty tensor`);
        return { outputShapes: [outShape], dispatches: [{ ...padDispatch(shape, outShape, begin, end, mode, value, maxPerDimension), bindings: io(1) }] };
      },
    };
  },
};
