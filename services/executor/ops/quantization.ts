/**
 * Linear quantization: QuantizeLinear and DequantizeLinear (per tensor, per axis, blocked),
 * DynamicQuantizeLinear (UINT8), and the integer products MatMulInteger, QLinearMatMul,
 * ConvInteger and QLinearConv. Quantized tensors are i32 on the GPU, so accumulations are exact;
 * scales and zero points are read on the host (they are initializers in exported models; values
 * the GPU computes are read back first) and reach the kernels as small tables, the requantization
 * multipliers computed in f32 as onnxruntime does: a_scale * b_scale / y_scale.
 */
import { invalidArgument } from '../../domain/errors.ts';
import { datatypeOfOnnxCode, type Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import {
  dequantizeVariant, integerConvDispatch, integerConvVariant, integerGemmDispatch, integerGemmVariant, quantizationRangeDispatch,
  quantizationRangeVariant, quantizeDispatch, quantizeVariant, type Requantize, type ScaleLayout,
} from '../kernels/quantization.ts';
import { normalizeAxis, numberView, product, stridesOf, windowGeometry } from '../tensor/index.ts';
import { attributeOf, intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { CpuContext, NodeInput, OperatorSpec, TypeContext } from './contract.ts';
import { reserve, store } from './cpu-indexing.ts';
import { matmulShapes } from './matmul-shapes.ts';
import { required, requiredValue } from './parameters.ts';
import { inputStorage, outputStorage } from './spec-parts.ts';
import { windowAttributes } from './window-attributes.ts';

/** The saturation range of each quantized type the GPU holds exactly in i32. */
const QUANTIZED_RANGES: Partial<Record<Datatype, readonly [number, number]>> = {
  UINT8: [0, 255], INT8: [-128, 127], UINT16: [0, 65535], INT16: [-32768, 32767],
};

function rangeOf(node: NodeProto, datatype: Datatype): readonly [number, number] {
  const range = QUANTIZED_RANGES[datatype];
  if (!range) throw unsupported(node, `quantized type ${datatype} (UINT8, INT8, UINT16 and INT16 are supported)`);
  return range;
}

/** The f32 words of a table (tables are raw 32-bit words). */
const floatWords = (values: ArrayLike<number>): Uint32Array => new Uint32Array(Float32Array.from(values.length ? values : [0]).buffer);
const intWords = (values: ArrayLike<number>): Uint32Array => new Uint32Array(Int32Array.from(values.length ? values : [0]).buffer);

/** ONNX rounding: to nearest, halves to even. */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const difference = value - floor;
  if (difference !== 0.5) return Math.round(value);
  return floor % 2 === 0 ? floor : floor + 1;
}

const saturate = (value: number, [low, high]: readonly [number, number]) => Math.min(Math.max(value, low), high);

/** A host-read scale / zero point input, or FAILED_PRECONDITION-style INVALID_ARGUMENT when the host has no value. */
function hostValues(node: NodeProto, inputs: ReadonlyArray<NodeInput | undefined>, index: number, what: string): { values: ArrayLike<number>; shape: number[] } | undefined {
  if (!node.input[index]) return undefined;
  const tensor = inputs[index]?.value;
  if (!tensor) throw invalidNode(node, `${what} is not known before the GPU runs`);
  return { values: numberView(tensor), shape: [...tensor.shape] };
}

// ---------------------------------------------------------------------------------------------
// QuantizeLinear / DequantizeLinear

/** How the scale of `node` maps onto a tensor of `shape`: per tensor, per axis or in blocks. */
function scaleLayout(node: NodeProto, shape: readonly number[], scaleShape: readonly number[]): ScaleLayout {
  const scaleCount = product(scaleShape);
  const block = intAttribute(node, 'block_size', 0);
  if (block < 0) throw invalidNode(node, `block_size=${block} (it must be 0 or positive)`);
  if (block === 0 && scaleShape.length <= 1 && scaleCount === 1 && (scaleShape.length === 0 || shape.length === 0 || !attributeOf(node, 'axis'))) {
    return { mode: 0, inner: 1, axisLength: 1, block: 1, blocks: 1 };
  }
  if (shape.length === 0) throw invalidArgument(`${node.opType} '${node.name}': a scalar input takes a single scale, got [${scaleShape}]`);
  const axis = normalizeAxis(intAttribute(node, 'axis', 1), shape.length);
  const inner = product(shape.slice(axis + 1));
  if (block === 0) {
    if (scaleShape.length !== 1 || scaleShape[0] !== shape[axis]) {
      throw invalidArgument(`${node.opType} '${node.name}': a per-axis scale needs [${shape[axis]}] (axis ${axis} of [${shape}]), got [${scaleShape}]`);
    }
    return { mode: 1, inner, axisLength: shape[axis], block: 1, blocks: shape[axis] };
  }
  const blocks = Math.ceil(shape[axis] / block);
  const expected = shape.map((dim, at) => (at === axis ? blocks : dim));
  if (scaleShape.length !== shape.length || scaleShape.some((dim, at) => dim !== expected[at])) {
    throw invalidArgument(`${node.opType} '${node.name}': blocks of ${block} along axis ${axis} of [${shape}] need a scale of [${expected}], got [${scaleShape}]`);
  }
  return { mode: 2, inner, axisLength: shape[axis], block, blocks };
}

function scaleIndexOf(layout: ScaleLayout, index: number): number {
  if (layout.mode === 0) return 0;
  const along = Math.floor(index / layout.inner) % layout.axisLength;
  if (layout.mode === 1) return along;
  const outer = Math.floor(index / (layout.inner * layout.axisLength));
  return (outer * layout.blocks + Math.floor(along / layout.block)) * layout.inner + (index % layout.inner);
}

/** Scales and zero points for `shape` (zero points absent: all 0). */
function quantizationParameters(node: NodeProto, inputs: ReadonlyArray<NodeInput | undefined>, shape: readonly number[]) {
  const scale = hostValues(node, inputs, 1, 'the scale')!;
  const zero = hostValues(node, inputs, 2, 'the zero point');
  if (zero && (zero.shape.length !== scale.shape.length || zero.shape.some((dim, at) => dim !== scale.shape[at]))) {
    throw invalidArgument(`${node.opType} '${node.name}': the zero point's shape [${zero.shape}] differs from the scale's [${scale.shape}]`);
  }
  const layout = scaleLayout(node, shape, scale.shape);
  return { layout, scales: scale.values, zeros: zero?.values ?? new Float64Array(scale.values.length) };
}

/** QuantizeLinear's output type: output_dtype (opset 21), else the zero point's type, else UINT8. */
function quantizedType(node: NodeProto, zeroPointType: Datatype | undefined): Datatype {
  const code = intAttribute(node, 'output_dtype', 0);
  if (code === 0) return zeroPointType ?? 'UINT8';
  const datatype = knownDatatype(code);
  if (!datatype || !QUANTIZED_RANGES[datatype]) throw unsupported(node, `output_dtype=${code} (UINT8, INT8, UINT16 and INT16 are supported)`);
  if (zeroPointType && zeroPointType !== datatype) throw invalidNode(node, `output_dtype ${datatype} differs from the zero point's type ${zeroPointType}`);
  return datatype;
}

/** The datatype of an ONNX element type code, undefined for one the executor does not know (float8, int4, ...). */
function knownDatatype(code: number): Datatype | undefined {
  try {
    return datatypeOfOnnxCode(code);
  } catch {
    return undefined;
  }
}

function validateQuantization(node: NodeProto): void {
  const outputCode = intAttribute(node, 'output_dtype', 0);
  if (outputCode !== 0 && !knownDatatype(outputCode)) throw unsupported(node, `output_dtype=${outputCode} (a type the executor does not hold)`);
  const precision = intAttribute(node, 'precision', 0);
  // The division runs in f32; a precision other than FLOAT would round differently.
  if (precision !== 0 && precision !== 1) throw unsupported(node, `precision=${precision} (the division runs in FLOAT)`);
  if (intAttribute(node, 'block_size', 0) < 0) throw invalidNode(node, 'block_size must be 0 or positive');
}

function cpuQuantize(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const { layout, scales, zeros } = quantizationParameters(context.node, context.inputs, input.shape);
  const datatype = context.outputTypes[0];
  const range = rangeOf(context.node, datatype);
  reserve(context, input.shape, datatype);
  const values = numberView(input);
  const out = Float64Array.from({ length: values.length }, (_, index) => {
    const at = scaleIndexOf(layout, index);
    return saturate(roundHalfEven(Math.fround(values[index] / scales[at])) + zeros[at], range);
  });
  return [store(datatype, input.shape, out)];
}

function cpuDequantize(context: CpuContext): HostTensor[] {
  const input = requiredValue(context, 0);
  const { layout, scales, zeros } = quantizationParameters(context.node, context.inputs, input.shape);
  const datatype = context.outputTypes[0];
  reserve(context, input.shape, datatype);
  const values = numberView(input);
  const out = Float64Array.from({ length: values.length }, (_, index) => {
    const at = scaleIndexOf(layout, index);
    return Math.fround((values[index] - zeros[at]) * scales[at]);
  });
  return [store(datatype, input.shape, out)];
}

const QUANTIZATION_ATTRIBUTES = ['axis', 'block_size', 'output_dtype', 'saturate', 'precision'];

export const quantizeLinearSpec: OperatorSpec = {
  attributes: QUANTIZATION_ATTRIBUTES,
  inputs: [2, 3],
  parameters: [1, 2],
  types: ({ node, inputTypes }: TypeContext) => [quantizedType(node, node.input[2] ? inputTypes[2] : undefined)],
  validate: validateQuantization,
  cpu: cpuQuantize,
  device(context) {
    const { node } = context;
    const range = rangeOf(node, context.outputTypes[0]);
    return {
      kind: 'kernel',
      variants: [quantizeVariant(inputStorage(context, 0))],
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        const { layout, scales, zeros } = quantizationParameters(node, inputs, shape);
        return {
          outputShapes: [[...shape]],
          tables: [floatWords(scales), intWords(zeros)],
          dispatches: [{ ...quantizeDispatch(product(shape), layout, range[0], range[1], maxPerDimension), bindings: [{ input: 0 }, { table: 0 }, { table: 1 }, { output: 0 }] }],
        };
      },
    };
  },
};

export const dequantizeLinearSpec: OperatorSpec = {
  attributes: QUANTIZATION_ATTRIBUTES,
  inputs: [2, 3],
  parameters: [1, 2],
  types: ({ node, inputTypes }: TypeContext) => {
    const code = intAttribute(node, 'output_dtype', 0);
    return [code === 0 ? inputTypes[1] ?? 'FP32' : knownDatatype(code) ?? 'FP32'];
  },
  validate: validateQuantization,
  cpu: cpuDequantize,
  device(context) {
    const { node } = context;
    const quantized = context.inputs[0]?.datatype;
    if (quantized && quantized !== 'INT32') rangeOf(node, quantized);
    return {
      kind: 'kernel',
      variants: [dequantizeVariant(outputStorage(context))],
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        const { layout, scales, zeros } = quantizationParameters(node, inputs, shape);
        return {
          outputShapes: [[...shape]],
          tables: [floatWords(scales), intWords(zeros)],
          dispatches: [{ ...quantizeDispatch(product(shape), layout, 0, 0, maxPerDimension), bindings: [{ input: 0 }, { table: 0 }, { table: 1 }, { output: 0 }] }],
        };
      },
    };
  },
};

/** DynamicQuantizeLinear: the UINT8 range of the whole tensor on the GPU, then the quantize pass reading it. */
export const dynamicQuantizeLinearSpec: OperatorSpec = {
  attributes: [],
  inputs: [1, 1],
  outputs: [1, 3],
  computesEveryOutput: true,
  types: () => ['UINT8', 'FP32', 'UINT8'],
  device(context) {
    const input = inputStorage(context, 0);
    return {
      kind: 'kernel',
      variants: [quantizationRangeVariant(input, outputStorage(context, 1)), quantizeVariant(input)],
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        const count = product(shape);
        return {
          outputShapes: [[...shape], [], []],
          scratch: [1, 1],
          dispatches: [
            { ...quantizationRangeDispatch(count), bindings: [{ input: 0 }, { scratch: 0 }, { scratch: 1 }, { output: 1 }, { output: 2 }] },
            {
              ...quantizeDispatch(count, { mode: 0, inner: 1, axisLength: 1, block: 1, blocks: 1 }, 0, 255, maxPerDimension),
              variant: 1, bindings: [{ input: 0 }, { scratch: 0 }, { scratch: 1 }, { output: 0 }],
            },
          ],
        };
      },
    };
  },
};

// ---------------------------------------------------------------------------------------------
// Integer products

/** A zero point read on the host, spread to `length` entries: one value for all, or one per entry. */
function spreadZeroPoint(node: NodeProto, inputs: ReadonlyArray<NodeInput | undefined>, index: number, length: number, what: string): number[] {
  const zero = hostValues(node, inputs, index, what);
  if (!zero) return new Array<number>(length).fill(0);
  if (zero.values.length === 1) return new Array<number>(length).fill(zero.values[0]);
  if (zero.shape.length === 1 && zero.values.length === length) return Array.from(zero.values);
  throw invalidArgument(`${node.opType} '${node.name}': ${what} has shape [${zero.shape}]; one value or [${length}] is supported`);
}

/** Requantization multipliers a_scale * b_scale[i] / y_scale in f32, one per column / output channel. */
function multipliers(node: NodeProto, inputs: ReadonlyArray<NodeInput | undefined>, indices: readonly [number, number, number], length: number): number[] {
  const [aScale, bScale, yScale] = indices.map((index, at) => hostValues(node, inputs, index, ['the input scale', 'the weight scale', 'the output scale'][at])!);
  if (aScale.values.length !== 1) throw invalidArgument(`${node.opType} '${node.name}': a per-tensor input scale is supported, got [${aScale.shape}]`);
  if (yScale.values.length !== 1) throw invalidArgument(`${node.opType} '${node.name}': a per-tensor output scale is supported, got [${yScale.shape}]`);
  const spread = bScale.values.length === 1 ? new Array<number>(length).fill(bScale.values[0]) : Array.from(bScale.values);
  if (spread.length !== length) throw invalidArgument(`${node.opType} '${node.name}': the weight scale has shape [${bScale.shape}]; one value or [${length}] is supported`);
  return spread.map((scale) => Math.fround(Math.fround(aScale.values[0] * scale) / yScale.values[0]));
}

function requantizeTo(node: NodeProto, inputs: ReadonlyArray<NodeInput | undefined>, zeroIndex: number, datatype: Datatype): Requantize {
  const [low, high] = rangeOf(node, datatype);
  const zero = hostValues(node, inputs, zeroIndex, 'the output zero point');
  if (zero && zero.values.length !== 1) throw invalidArgument(`${node.opType} '${node.name}': a per-tensor output zero point is supported, got [${zero.shape}]`);
  return { low, high, zeroPoint: zero?.values[0] ?? 0 };
}

function checkQuantizedInputs(context: { node: NodeProto; inputs: ReadonlyArray<{ datatype: Datatype | undefined } | undefined> }, indices: readonly number[]): void {
  for (const index of indices) {
    const datatype = context.inputs[index]?.datatype;
    if (datatype) rangeOf(context.node, datatype);
  }
}

/** MatMulInteger (inputs A, B, a_zero_point, b_zero_point) and QLinearMatMul (A, a_scale, a_zero_point, B, b_scale, b_zero_point, y_scale, y_zero_point). */
function integerMatMulSpec(linear: boolean): OperatorSpec {
  const [a, b, aZero, bZero] = linear ? [0, 3, 2, 5] : [0, 1, 2, 3];
  return {
    attributes: [],
    inputs: linear ? [8, 8] : [2, 4],
    parameters: linear ? [1, 2, 4, 5, 6, 7] : [2, 3],
    types: ({ inputTypes }) => [linear ? inputTypes[7] ?? 'UINT8' : 'INT32'],
    device(context) {
      const { node } = context;
      checkQuantizedInputs(context, [a, b]);
      const outputType = context.outputTypes[0];
      return {
        kind: 'kernel',
        variants: [integerGemmVariant()],
        plan(inputs, maxPerDimension) {
          const { outShape, problem } = matmulShapes(required(inputs, a).shape, required(inputs, b).shape);
          const { m, n, k, batchShape, aBatchStrides, bBatchStrides } = problem;
          const batches = product(batchShape);
          const offsets = new Uint32Array(Math.max(2 * batches, 2));
          const batchStrides = stridesOf(batchShape);
          for (let batch = 0; batch < batches; batch++) {
            for (let dim = 0; dim < batchShape.length; dim++) {
              const coordinate = Math.floor(batch / batchStrides[dim]) % batchShape[dim];
              offsets[2 * batch] += coordinate * aBatchStrides[dim];
              offsets[2 * batch + 1] += coordinate * bBatchStrides[dim];
            }
          }
          const requantize = linear ? requantizeTo(node, inputs, 7, outputType) : undefined;
          const tables = [
            intWords(spreadZeroPoint(node, inputs, aZero, m, 'the A zero point')),
            intWords(spreadZeroPoint(node, inputs, bZero, n, 'the B zero point')),
            floatWords(linear ? multipliers(node, inputs, [1, 4, 6], n) : new Array<number>(n).fill(0)),
            offsets,
          ];
          return {
            outputShapes: [outShape], tables,
            dispatches: [{
              ...integerGemmDispatch(batches, m, n, k, requantize, maxPerDimension),
              bindings: [{ input: a }, { input: b }, { table: 0 }, { table: 1 }, { table: 2 }, { table: 3 }, { output: 0 }],
            }],
          };
        },
      };
    },
  };
}

export const matMulIntegerSpec = integerMatMulSpec(false);
export const qLinearMatMulSpec = integerMatMulSpec(true);

/** ConvInteger (x, w, x_zero_point, w_zero_point) and QLinearConv (x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B). */
function integerConvSpec(linear: boolean): OperatorSpec {
  const [x, w, xZero, wZero] = linear ? [0, 3, 2, 5] : [0, 1, 2, 3];
  return {
    attributes: ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'],
    inputs: linear ? [8, 9] : [2, 4],
    parameters: linear ? [1, 2, 4, 5, 6, 7, 8] : [2, 3],
    types: ({ inputTypes }) => [linear ? inputTypes[7] ?? 'UINT8' : 'INT32'],
    validate: (node) => { if (intAttribute(node, 'group', 1) < 1) throw invalidNode(node, 'group must be at least 1'); },
    device(context) {
      const { node } = context;
      checkQuantizedInputs(context, [x, w]);
      const outputType = context.outputTypes[0];
      const group = intAttribute(node, 'group', 1);
      return {
        kind: 'kernel',
        variants: [integerConvVariant()],
        plan(inputs, maxPerDimension) {
          const xShape = required(inputs, x).shape;
          const wShape = required(inputs, w).shape;
          const spatial = wShape.length - 2;
          if (spatial < 1 || spatial > 3 || xShape.length !== wShape.length) {
            throw invalidArgument(`${node.opType} '${node.name}': input [${xShape}] and weights [${wShape}] need 1 to 3 matching spatial dims`);
          }
          const [batch, inChannels] = xShape;
          const outChannels = wShape[0];
          if (inChannels !== wShape[1] * group || outChannels % group !== 0) {
            throw invalidArgument(`${node.opType} '${node.name}': ${inChannels} input channels, weights [${wShape}] and group ${group} do not match`);
          }
          const attributes = windowAttributes(node, spatial, wShape.slice(2));
          if (attributes.kernel.some((size, dim) => size !== wShape[2 + dim])) {
            throw invalidArgument(`${node.opType} '${node.name}': kernel_shape [${attributes.kernel}] differs from the weights [${wShape}]`);
          }
          const { outSpatial, padBegin } = windowGeometry(xShape.slice(2), attributes);
          const lead = <T>(values: readonly T[], fill: T): T[] => [...new Array<T>(3 - spatial).fill(fill), ...values];
          const problem = {
            batch, inChannels, outChannels, group, inSpatial: lead(xShape.slice(2), 1), outSpatial: lead(outSpatial, 1),
            kernel: lead(attributes.kernel, 1), strides: lead(attributes.strides, 1), dilations: lead(attributes.dilations, 1), padBegin: lead(padBegin, 0),
          };
          const xZeroPoint = spreadZeroPoint(node, inputs, xZero, 1, 'the input zero point');
          const bias = linear && node.input[8] ? Array.from(hostValues(node, inputs, 8, 'the bias')!.values) : new Array<number>(outChannels).fill(0);
          if (bias.length !== outChannels) throw invalidArgument(`${node.opType} '${node.name}': the bias has ${bias.length} values, expected ${outChannels}`);
          const tables = [
            intWords(xZeroPoint),
            intWords(spreadZeroPoint(node, inputs, wZero, outChannels, 'the weight zero point')),
            floatWords(linear ? multipliers(node, inputs, [1, 4, 6], outChannels) : new Array<number>(outChannels).fill(0)),
            intWords(bias),
          ];
          const requantize = linear ? requantizeTo(node, inputs, 7, outputType) : undefined;
          return {
            outputShapes: [[batch, outChannels, ...outSpatial]], tables,
            dispatches: [{
              ...integerConvDispatch(problem, requantize, maxPerDimension),
              bindings: [{ input: x }, { input: w }, { table: 0 }, { table: 1 }, { table: 2 }, { table: 3 }, { output: 0 }],
            }],
          };
        },
      };
    },
  };
}

export const convIntegerSpec = integerConvSpec(false);
export const qLinearConvSpec = integerConvSpec(true);
