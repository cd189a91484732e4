/**
 * Operators that move elements by position: DepthToSpace (DCR / CRD) and SpaceToDepth, strided
 * copies through a 6-D view of [N, C, H, W] on the copy kernel, and Trilu (the triangular part
 * of the last two dims; k an input read on the host). Each also evaluates on the CPU.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { copyDispatch, copyVariants, triluDispatch, triluVariant } from '../kernels/index.ts';
import { numberView, product, stridesOf, toNumbers } from '../tensor/index.ts';
import { attributeOf, booleanAttribute, enumAttribute, intAttribute, invalidNode } from './attributes.ts';
import type { CpuContext, NodeInput, OperatorSpec } from './contract.ts';
import { pick, reserve, store, stridedIndices } from './cpu-indexing.ts';
import { required, requiredValue } from './parameters.ts';
import { inputStorage, io, sameAsInput } from './spec-parts.ts';

/** The output, and the walk over it in memory order (6-D) with the input strides of each step. */
interface Rearrangement {
  readonly outShape: number[];
  readonly walk: number[];
  readonly inStrides: number[];
}

function blockSize(node: NodeProto): number {
  if (!attributeOf(node, 'blocksize')) throw invalidNode(node, `${node.opType} needs the blocksize attribute`);
  const size = intAttribute(node, 'blocksize', 0);
  if (size < 1) throw invalidNode(node, `blocksize=${size} (it must be at least 1)`);
  return size;
}

function nchw(node: NodeProto, shape: readonly number[]): [number, number, number, number] {
  if (shape.length !== 4) throw invalidArgument(`${node.opType} needs an input [N, C, H, W], got [${shape}]`);
  return [shape[0], shape[1], shape[2], shape[3]];
}

/**
 * DepthToSpace: out[n, c, h * b + i, w * b + j] = x[n, depth, h, w], where depth is
 * (i * b + j) * C' + c (DCR, the default) or (c * b + i) * b + j (CRD). Walked as
 * [N, C', H, b, W, b], the output's memory order.
 */
function depthToSpace(node: NodeProto, shape: readonly number[]): Rearrangement {
  const b = blockSize(node);
  const [n, c, h, w] = nchw(node, shape);
  if (c % (b * b) !== 0) throw invalidArgument(`DepthToSpace of ${c} channels with blocksize ${b}: the channels must be a multiple of ${b * b}`);
  const depth = c / (b * b);
  const [sn, , sh] = stridesOf(shape);
  const plane = h * w;
  const crd = enumAttribute(node, 'mode', ['DCR', 'CRD'], 'DCR') === 'CRD';
  // Input strides of c', i and j: where each lands in the channel index.
  const [strideC, strideI, strideJ] = crd ? [b * b * plane, b * plane, plane] : [plane, b * depth * plane, depth * plane];
  return { outShape: [n, depth, h * b, w * b], walk: [n, depth, h, b, w, b], inStrides: [sn, strideC, sh, strideI, 1, strideJ] };
}

/** SpaceToDepth: out[n, (i * b + j) * C + c, h, w] = x[n, c, h * b + i, w * b + j]; walked as [N, b, b, C, H', W']. */
function spaceToDepth(node: NodeProto, shape: readonly number[]): Rearrangement {
  const b = blockSize(node);
  const [n, c, h, w] = nchw(node, shape);
  if (h % b !== 0 || w % b !== 0) throw invalidArgument(`SpaceToDepth of [${shape}] with blocksize ${b}: H and W must be multiples of ${b}`);
  const [sn, sc] = stridesOf(shape);
  return { outShape: [n, c * b * b, h / b, w / b], walk: [n, b, b, c, h / b, w / b], inStrides: [sn, w, 1, sc, b * w, b] };
}

function rearrangeSpec(attributes: readonly string[], rearrange: (node: NodeProto, shape: readonly number[]) => Rearrangement): OperatorSpec {
  return {
    attributes,
    inputs: [1, 1],
    types: sameAsInput,
    validate: (node) => {
      blockSize(node);
      if (attributes.includes('mode')) enumAttribute(node, 'mode', ['DCR', 'CRD'], 'DCR');
    },
    cpu(context) {
      const input = requiredValue(context, 0);
      const { outShape, walk, inStrides } = rearrange(context.node, input.shape);
      reserve(context, outShape, input.datatype);
      return [pick(input, outShape, stridedIndices(walk, inStrides, 0))];
    },
    device(context) {
      const { node } = context;
      return {
        kind: 'kernel',
        variants: copyVariants(inputStorage(context, 0)),
        plan(inputs, maxPerDimension) {
          const { outShape, walk, inStrides } = rearrange(node, required(inputs, 0).shape);
          const dispatches = product(walk) === 0 ? []
            : [{ ...copyDispatch({ shape: walk, inStrides, outStrides: stridesOf(walk), inOffset: 0, outOffset: 0 }, maxPerDimension), bindings: io(1) }];
          return { outputShapes: [outShape], dispatches };
        },
      };
    },
  };
}

export const depthToSpaceSpec = rearrangeSpec(['blocksize', 'mode'], depthToSpace);
export const spaceToDepthSpec = rearrangeSpec(['blocksize'], spaceToDepth);

// Trilu

/** k: input 1 when present (a scalar known on the host), else 0. */
function triluK(node: NodeProto, inputs: ReadonlyArray<NodeInput | undefined>): number {
  if (!node.input[1]) return 0;
  const tensor = inputs[1]?.value;
  if (!tensor) throw invalidNode(node, 'k is not known before the GPU runs');
  const values = toNumbers(tensor);
  if (values.length !== 1) throw invalidArgument(`Trilu's k has ${values.length} values, expected one`);
  return values[0];
}

function matrices(shape: readonly number[]): number[] {
  if (shape.length < 2) throw invalidArgument(`Trilu needs an input of rank 2 or more, got [${shape}]`);
  return [...shape];
}

function cpuTrilu(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const shape = matrices(input.shape);
  reserve(context, shape, input.datatype);
  const k = triluK(context.node, context.inputs);
  const upper = booleanAttribute(context.node, 'upper', true);
  const [rows, cols] = shape.slice(-2);
  const values = numberView(input);
  const kept = Float64Array.from(values, (value, index) => {
    const offset = (index % cols) - (Math.floor(index / cols) % rows);
    return (upper ? offset >= k : offset <= k) ? value : 0;
  });
  return [store(input.datatype, shape, kept)];
}

export const triluSpec: OperatorSpec = {
  attributes: ['upper'],
  inputs: [1, 2],
  parameters: [1],
  types: sameAsInput,
  validate: (node) => { booleanAttribute(node, 'upper', true); },
  cpu: cpuTrilu,
  device(context) {
    const { node } = context;
    const upper = booleanAttribute(node, 'upper', true);
    return {
      kind: 'kernel',
      variants: [triluVariant(inputStorage(context, 0))],
      plan(inputs, maxPerDimension) {
        const shape = matrices(required(inputs, 0).shape);
        return { outputShapes: [shape], dispatches: [{ ...triluDispatch(shape, upper, triluK(node, inputs), maxPerDimension), bindings: io(1) }] };
      },
    };
  },
};
