/**
 * Reading a window operator's attributes (Conv, ConvTranspose, the pools): kernel_shape,
 * strides, dilations, pads and auto_pad for 1-D or 2-D windows, which the kernels run as 2-D.
 */
import type { NodeProto } from '../../onnx/model.ts';
import type { AutoPad } from '../tensor/index.ts';
import { enumAttribute, intsAttribute, invalidNode, unsupported } from './attributes.ts';

/** A window's attributes with their defaults filled in (strides and dilations 1, pads 0, auto_pad NOTSET). */
export interface WindowSetup {
  kernel: number[];
  strides: number[];
  dilations: number[];
  pads: number[];
  autoPad: AutoPad;
}

/** kernel_shape / strides / dilations / pads / auto_pad for `spatial` dims (1 or 2). */
export function windowAttributes(node: NodeProto, spatial: number, kernelFallback?: number[]): WindowSetup {
  const kernel = intsAttribute(node, 'kernel_shape') ?? kernelFallback;
  if (!kernel) throw invalidNode(node, 'kernel_shape is required');
  if (kernel.length !== spatial) throw invalidNode(node, `kernel_shape [${kernel}] has ${kernel.length} dims, the input ${spatial} spatial dims`);
  const list = (name: string, length: number, fallback: number) => {
    const values = intsAttribute(node, name) ?? new Array<number>(length).fill(fallback);
    if (values.length !== length) throw invalidNode(node, `${name} [${values}] needs ${length} values`);
    return values;
  };
  return {
    kernel,
    strides: list('strides', spatial, 1),
    dilations: list('dilations', spatial, 1),
    pads: list('pads', 2 * spatial, 0),
    autoPad: enumAttribute(node, 'auto_pad', ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'], 'NOTSET'),
  };
}

/** The spatial rank of a window operator from its weights or kernel_shape; only 1-D and 2-D run. */
export function spatialRank(node: NodeProto, rank: number | undefined): number {
  const spatial = rank ?? intsAttribute(node, 'kernel_shape')?.length;
  if (spatial === undefined) throw invalidNode(node, 'kernel_shape is required');
  if (spatial !== 1 && spatial !== 2) throw unsupported(node, `${spatial}-D windows (1-D and 2-D are supported)`);
  return spatial;
}

/** 1-D windows run as 2-D ones of height 1. */
export function as2d(spatial: number, values: readonly number[], fill: number): [number, number] {
  return spatial === 1 ? [fill, values[0]] : [values[0], values[1]];
}
