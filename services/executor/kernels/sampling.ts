/**
 * Sampling kernels: shaders/sampling/grid_sample.wgsl (GridSample), roi_align.wgsl (RoiAlign)
 * and max_unpool.wgsl (MaxUnpool), one invocation per output element.
 */
import type { StorageType } from '../tensor/index.ts';
import { planeGrid } from './elementwise.ts';
import { UniformWriter, type Dispatch, type KernelVariant } from './kernel.ts';

const WORKGROUP_SIZE = 64;

const grid = (planes: number, planeSize: number, maxPerDimension: number): [number, number, number] =>
  (planes === 0 || planeSize === 0 ? [0, 1, 1] : planeGrid(planes, planeSize, WORKGROUP_SIZE, maxPerDimension));

export const GRID_SAMPLE_MODES = ['nearest', 'linear', 'cubic'] as const;
export type GridSampleMode = typeof GRID_SAMPLE_MODES[number];
export const GRID_SAMPLE_PADDINGS = ['zeros', 'border', 'reflection'] as const;
export type GridSamplePadding = typeof GRID_SAMPLE_PADDINGS[number];

/** Bindings: x, grid, output, params. */
export function gridSampleVariant(type: StorageType, mode: GridSampleMode, padding: GridSamplePadding, volume: boolean): KernelVariant {
  return {
    shader: 'sampling/grid_sample.wgsl',
    types: { T: type },
    constants: { MODE: GRID_SAMPLE_MODES.indexOf(mode), PADDING: GRID_SAMPLE_PADDINGS.indexOf(padding), VOLUME: volume ? 1 : 0, WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/** x [N, C, (D,) H, W] sampled at the `outSpatial` points of grid [N, ...outSpatial, 2 or 3]. */
export function gridSampleDispatch(xShape: readonly number[], outSpatial: readonly number[], alignCorners: boolean, maxPerDimension: number): Dispatch {
  const [batch, channels] = xShape;
  const [inD, inH, inW] = xShape.length === 5 ? xShape.slice(2) : [1, ...xShape.slice(2)];
  const planes = batch * channels;
  const outSize = outSpatial.reduce((total, dim) => total * dim, 1);
  return {
    workgroups: grid(planes, outSize, maxPerDimension),
    uniforms: new UniformWriter(28).u32(planes).u32(channels).u32(inD).u32(inH).u32(inW).u32(outSize).u32(alignCorners ? 1 : 0).finish(),
  };
}

/** Bindings: x, rois, batch_indices, output, params. */
export function roiAlignVariant(type: StorageType, isMax: boolean): KernelVariant {
  return {
    shader: 'sampling/roi_align.wgsl',
    types: { T: type },
    constants: { MAX: isMax ? 1 : 0, WORKGROUP_SIZE },
    bindings: ['read-only-storage', 'read-only-storage', 'read-only-storage', 'storage', 'uniform'],
  };
}

/** RoiAlign's attributes with their defaults filled in. */
export interface RoiAlignAttributes {
  readonly outputHeight: number;
  readonly outputWidth: number;
  readonly samplingRatio: number;
  readonly spatialScale: number;
  readonly halfPixel: boolean;
}

/** x [N, C, H, W] pooled over `rois` regions. */
export function roiAlignDispatch(xShape: readonly number[], rois: number, attributes: RoiAlignAttributes, maxPerDimension: number): Dispatch {
  const [batch, channels, height, width] = xShape;
  const planes = rois * channels;
  const empty = batch === 0 || height === 0 || width === 0;
  return {
    workgroups: empty ? [0, 1, 1] : grid(planes, attributes.outputHeight * attributes.outputWidth, maxPerDimension),
    uniforms: new UniformWriter(40).u32(planes).u32(channels).u32(batch).u32(height).u32(width)
      .u32(attributes.outputHeight).u32(attributes.outputWidth).u32(attributes.samplingRatio).u32(attributes.halfPixel ? 1 : 0)
      .f32(attributes.spatialScale).finish(),
  };
}
