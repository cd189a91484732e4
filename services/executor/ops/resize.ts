/**
 * Resize (opsets 10, 11, 13, 18, 19) and Upsample (7, 9): nearest, linear and cubic modes, every
 * coordinate transformation, nearest mode, scales or sizes (read on the host: sizes computed on
 * the GPU are read back first), axes and keep_aspect_ratio_policy (18), antialias (18),
 * exclude_outside, cubic_coeff_a and extrapolation_value. The resize runs as one pass per resized
 * axis (innermost first), each reading a sampling table the host computes (resize-sampling.ts).
 */
import type { NodeProto } from '../../onnx/model.ts';
import { invalidArgument } from '../../domain/errors.ts';
import { copyDispatch, copyVariants } from '../kernels/index.ts';
import { resizeDispatch, resizeVariant } from '../kernels/resize.ts';
import { kindOf, normalizeAxis, product, showShape, toNumbers } from '../tensor/index.ts';
import { attributeOf, booleanAttribute, enumAttribute, floatAttribute, intsAttribute, invalidNode, unsupported } from './attributes.ts';
import type { NodeInput, OperatorPlan, OperatorSpec, PlannedKernel } from './contract.ts';
import { required } from './parameters.ts';
import { axisTable, type CoordinateTransform, type NearestMode, type ResizeMode, type SamplingOptions } from './resize-sampling.ts';
import { inputStorage, sameAsInput } from './spec-parts.ts';

const f = Math.fround;

const TRANSFORMS: readonly CoordinateTransform[] = ['half_pixel', 'asymmetric', 'pytorch_half_pixel', 'tf_half_pixel_for_nn', 'align_corners', 'tf_crop_and_resize'];
const NEAREST_MODES: readonly NearestMode[] = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];
type AspectPolicy = 'stretch' | 'not_larger' | 'not_smaller';

/** Attributes each version defines (Upsample and Resize-10 have only the mode, Upsample-7 its scales too). */
function definedAttributes(opType: string, opset: number): string[] {
  if (opType === 'Upsample') return opset < 9 ? ['mode', 'scales'] : ['mode'];
  if (opset < 11) return ['mode'];
  const attributes = ['mode', 'coordinate_transformation_mode', 'cubic_coeff_a', 'exclude_outside', 'extrapolation_value', 'nearest_mode'];
  return opset < 18 ? attributes : [...attributes, 'antialias', 'axes', 'keep_aspect_ratio_policy'];
}

interface ResizeOptions extends SamplingOptions {
  readonly isUpsample: boolean;
  readonly extrapolation: number;
  readonly axes: readonly number[] | undefined;
  readonly policy: AspectPolicy;
}

function optionsOf(node: NodeProto, opset: number): ResizeOptions {
  const isUpsample = node.opType === 'Upsample';
  for (const attribute of node.attribute) {
    if (!definedAttributes(node.opType, opset).includes(attribute.name)) {
      throw unsupported(node, `attribute '${attribute.name}', which ${node.opType} does not define at opset ${opset}`);
    }
  }
  const mode = enumAttribute<ResizeMode>(node, 'mode', isUpsample || opset < 11 ? ['nearest', 'linear'] : ['nearest', 'linear', 'cubic'], 'nearest');
  const legacy = isUpsample || opset < 11;
  const transform = legacy ? 'asymmetric'
    : enumAttribute<CoordinateTransform>(node, 'coordinate_transformation_mode', opset >= 19 ? [...TRANSFORMS, 'half_pixel_symmetric'] : TRANSFORMS, 'half_pixel');
  const antialias = booleanAttribute(node, 'antialias', false);
  if (antialias && mode === 'nearest') throw unsupported(node, "antialias with mode 'nearest' (linear and cubic only)");
  const excludeOutside = booleanAttribute(node, 'exclude_outside', false);
  if (excludeOutside && mode !== 'cubic' && !(antialias && mode === 'linear')) {
    throw unsupported(node, `exclude_outside=1 with mode '${mode}' (cubic, or linear with antialias, only)`);
  }
  return {
    isUpsample, mode, transform, antialias, excludeOutside,
    nearest: legacy ? 'simple' : enumAttribute<NearestMode>(node, 'nearest_mode', NEAREST_MODES, 'round_prefer_floor'),
    cubicCoeffA: f(floatAttribute(node, 'cubic_coeff_a', -0.75)),
    extrapolation: floatAttribute(node, 'extrapolation_value', 0),
    axes: intsAttribute(node, 'axes'),
    policy: enumAttribute<AspectPolicy>(node, 'keep_aspect_ratio_policy', ['stretch', 'not_larger', 'not_smaller'], 'stretch'),
  };
}

/** The output shape, and each axis's scale (f32) and roi, for an input of `shape`. */
export function resizeGeometry(node: NodeProto, opset: number, options: ResizeOptions, inputs: ReadonlyArray<NodeInput | undefined>, shape: readonly number[]) {
  const rank = shape.length;
  if (rank === 0) throw invalidArgument(`${node.opType} needs an input of rank >= 1`);
  const axes = options.axes ? options.axes.map((axis) => normalizeAxis(axis, rank)) : shape.map((_, axis) => axis);
  if (new Set(axes).size !== axes.length) throw invalidArgument(`${node.opType} axes [${options.axes}] repeat an axis`);
  const values = (index: number) => {
    if (!node.input[index]) return undefined;
    const tensor = inputs[index]?.value;
    if (!tensor) throw invalidArgument(`${node.opType} needs input ${index} on the host`);
    return tensor.shape.includes(0) ? undefined : toNumbers(tensor);
  };
  const scalesIndex = options.isUpsample || opset < 11 ? 1 : 2;
  const givenScales = options.isUpsample && opset < 9 ? floatsAttribute(node, 'scales') : values(scalesIndex);
  const sizes = options.isUpsample || opset < 11 ? undefined : values(3);
  if ((givenScales === undefined) === (sizes === undefined)) throw invalidArgument(`${node.opType} needs exactly one of scales and sizes`);
  const scales = new Array<number>(rank).fill(1);
  const outShape = [...shape];
  if (givenScales) {
    if (givenScales.length !== axes.length) throw invalidArgument(`${node.opType} has ${givenScales.length} scales for ${axes.length} axes`);
    axes.forEach((axis, index) => {
      const scale = f(givenScales[index]);
      if (!(options.isUpsample ? scale >= 1 : scale > 0)) throw invalidArgument(`${node.opType} scale ${givenScales[index]} must be ${options.isUpsample ? '>= 1' : '> 0'}`);
      scales[axis] = scale;
      outShape[axis] = Math.trunc(f(scale * shape[axis]));
    });
  } else {
    if (sizes!.length !== axes.length) throw invalidArgument(`${node.opType} has ${sizes!.length} sizes for ${axes.length} axes`);
    axes.forEach((axis, index) => {
      const size = sizes![index];
      if (!(Number.isInteger(size) && size >= 0)) throw invalidArgument(`${node.opType} size ${size} is not a dim`);
      if (shape[axis] === 0 && size !== 0) throw invalidArgument(`${node.opType} cannot resize an empty dim ${axis} to ${size}`);
      outShape[axis] = size;
      scales[axis] = shape[axis] === 0 ? 1 : f(f(size) / f(shape[axis]));
    });
    if (options.policy !== 'stretch') {
      const chosen = options.policy === 'not_larger' ? Math.min(...axes.map((axis) => scales[axis])) : Math.max(...axes.map((axis) => scales[axis]));
      for (const axis of axes) {
        scales[axis] = chosen;
        outShape[axis] = Math.sign(f(chosen * shape[axis])) * Math.round(Math.abs(f(chosen * shape[axis])));
      }
    }
  }
  const roi = [...new Array<number>(rank).fill(0), ...new Array<number>(rank).fill(1)];
  if (options.transform === 'tf_crop_and_resize') {
    const given = values(1);
    if (!given || given.length !== 2 * axes.length) throw invalidArgument(`${node.opType} tf_crop_and_resize needs a roi of ${2 * axes.length} values`);
    axes.forEach((axis, index) => {
      roi[axis] = given[index];
      roi[rank + axis] = given[axes.length + index];
    });
  }
  return { outShape, scales, roi };
}

function floatsAttribute(node: NodeProto, name: string): number[] | undefined {
  const attribute = attributeOf(node, name);
  return attribute ? attribute.floats.map(Number) : undefined;
}

function resizePlan(options: ResizeOptions, geometry: ReturnType<typeof resizeGeometry>, shape: readonly number[], maxPerDimension: number): OperatorPlan {
  const { outShape, scales, roi } = geometry;
  const outputShapes = [outShape];
  if (product(outShape) === 0) return { outputShapes, dispatches: [] };
  if (outShape.every((dim, axis) => dim === shape[axis])) {
    const copy = copyDispatch({ shape: [product(shape)], inStrides: [1], outStrides: [1], inOffset: 0, outOffset: 0 }, maxPerDimension);
    return { outputShapes, dispatches: [{ ...copy, variant: 1 + (copy.variant ?? 0), bindings: [{ input: 0 }, { output: 0 }] }] };
  }
  // Innermost axis first, as the reference's separable filters run.
  const axes = shape.map((_, axis) => axis).filter((axis) => scales[axis] !== 1).reverse();
  const current = [...shape];
  const dispatches: PlannedKernel[] = [];
  const scratch: number[] = [];
  const tables: Uint32Array[] = [];
  axes.forEach((axis, pass) => {
    const table = axisTable(options, { inLength: current[axis], outLength: outShape[axis], scale: scales[axis], roiStart: roi[axis], roiEnd: roi[shape.length + axis] });
    const outer = product(current.slice(0, axis));
    const inner = product(current.slice(axis + 1));
    const source = pass === 0 ? { input: 0 } : { scratch: pass - 1 };
    current[axis] = outShape[axis];
    const last = pass === axes.length - 1;
    const target = last ? { output: 0 } : { scratch: scratch.push(product(current)) - 1 };
    dispatches.push({
      ...resizeDispatch(outer, shape[axis], outShape[axis], inner, table.taps, options.extrapolation, maxPerDimension),
      bindings: [source, { table: tables.push(table.words) - 1 }, target],
    });
  });
  return { outputShapes, dispatches, scratch, tables };
}

/** Resize, or Upsample (its opset 7 to 9 predecessor: asymmetric coordinates, scales only). */
export function resizeSpec(opType: 'Resize' | 'Upsample'): OperatorSpec {
  return {
    attributes: ['mode', 'coordinate_transformation_mode', 'cubic_coeff_a', 'exclude_outside', 'extrapolation_value', 'nearest_mode', 'antialias', 'axes',
      'keep_aspect_ratio_policy', 'scales'],
    inputs: opType === 'Upsample' ? [1, 2] : [1, 4],
    parameters: opType === 'Upsample' ? [1] : [1, 2, 3],
    types: sameAsInput,
    validate(node, opset) {
      if (opType === 'Upsample' && opset >= 10) throw unsupported(node, `opset ${opset} (Upsample is deprecated from opset 10; use Resize)`);
      if (opType === 'Resize' && opset < 11 && node.input.length !== 2) throw invalidNode(node, 'Resize-10 takes X and scales');
      if (opType === 'Resize' && opset >= 11 && !node.input[2] && !node.input[3]) throw unsupported(node, 'neither scales nor sizes (one of them is required)');
      if (opType === 'Upsample' && node.input.length !== (opset < 9 ? 1 : 2)) throw invalidNode(node, `Upsample-${opset < 9 ? 7 : 9} takes ${opset < 9 ? 'X (scales is an attribute)' : 'X and scales'}`);
      optionsOf(node, opset);
    },
    device(context) {
      const { node, opset } = context;
      const options = optionsOf(node, opset);
      const datatype = context.inputs[0].datatype!;
      if (options.mode !== 'nearest' && kindOf(datatype) !== 'float') throw unsupported(node, `${datatype} input with mode '${options.mode}' (nearest only for integers)`);
      const storage = inputStorage(context, 0);
      return {
        kind: 'kernel',
        variants: [resizeVariant(storage), ...copyVariants(storage)],
        plan(inputs, maxPerDimension) {
          const shape = required(inputs, 0).shape;
          const geometry = resizeGeometry(node, opset, options, inputs, shape);
          if (geometry.outShape.length !== shape.length) throw invalidArgument(`${node.opType} output ${showShape(geometry.outShape)} must keep the rank of ${showShape(shape)}`);
          return resizePlan(options, geometry, shape, maxPerDimension);
        },
      };
    },
  };
}
