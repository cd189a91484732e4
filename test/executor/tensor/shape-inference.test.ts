/**
 * Shape inference without a GPU: broadcasting, window output sizes (pads, strides, dilations,
 * auto_pad, ceil_mode), Reshape's 0 and -1, and the errors for shapes that do not fit.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import {
  broadcastShapes, broadcastStrides, convTransposeGeometry, product, reshapeShape, stridesOf, windowGeometry, type WindowAttributes,
} from '../../../services/executor/tensor/index.ts';

function expectInvalid(run: () => unknown, message: RegExp): void {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(NexusError);
    expect((error as NexusError).code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect((error as NexusError).message).toMatch(message);
    return;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

const window = (overrides: Partial<WindowAttributes>): WindowAttributes => ({
  kernel: [3, 3], strides: [1, 1], dilations: [1, 1], pads: [0, 0, 0, 0], autoPad: 'NOTSET', ...overrides,
});

describe('broadcasting', () => {
  it('aligns shapes from the right and stretches size-1 dims', () => {
    expect(broadcastShapes([2, 1, 4], [3, 1])).toEqual([2, 3, 4]);
    expect(broadcastShapes([5], [])).toEqual([5]);
    expect(broadcastShapes([1, 3], [2, 1], [2, 3])).toEqual([2, 3]);
  });

  it('lets a 0-sized dim win over 1', () => {
    expect(broadcastShapes([0, 3], [1, 3])).toEqual([0, 3]);
  });

  it('refuses dims that differ and are not 1, naming both shapes', () => {
    expectInvalid(() => broadcastShapes([2, 3], [4, 3]), /\[2, 3\] and \[4, 3\] do not broadcast \(dim 0: 2 vs 4\)/);
  });

  it('reads a broadcast operand with stride 0 along the stretched dims', () => {
    expect(broadcastStrides([3, 1], [2, 3, 4])).toEqual([0, 1, 0]);
    expect(stridesOf([2, 3, 4])).toEqual([12, 4, 1]);
    expect(product([2, 3, 4])).toBe(24);
    expect(product([])).toBe(1);
  });
});

describe('window geometry (Conv and pools)', () => {
  it('explicit pads, strides and dilations: floor((in + pads - ((k - 1) * d + 1)) / s) + 1', () => {
    expect(windowGeometry([32, 32], window({ pads: [1, 1, 1, 1] })).outSpatial).toEqual([32, 32]);
    expect(windowGeometry([32, 31], window({ strides: [2, 2], pads: [1, 1, 1, 1] })).outSpatial).toEqual([16, 16]);
    expect(windowGeometry([10, 10], window({ dilations: [2, 3] })).outSpatial).toEqual([6, 4]);
    expect(windowGeometry([7, 9], window({ kernel: [2, 3], pads: [0, 1, 2, 0], strides: [1, 2] }))).toEqual({
      outSpatial: [8, 4], padBegin: [0, 1], padEnd: [2, 0],
    });
  });

  it('SAME_UPPER puts the odd pad at the end, SAME_LOWER at the start; out = ceil(in / stride)', () => {
    const upper = windowGeometry([8], { kernel: [4], strides: [2], dilations: [1], pads: [0, 0], autoPad: 'SAME_UPPER' });
    expect(upper).toEqual({ outSpatial: [4], padBegin: [1], padEnd: [1] });
    const odd = windowGeometry([7], { kernel: [4], strides: [1], dilations: [1], pads: [0, 0], autoPad: 'SAME_UPPER' });
    expect(odd).toEqual({ outSpatial: [7], padBegin: [1], padEnd: [2] });
    const lower = windowGeometry([7], { kernel: [4], strides: [1], dilations: [1], pads: [0, 0], autoPad: 'SAME_LOWER' });
    expect(lower).toEqual({ outSpatial: [7], padBegin: [2], padEnd: [1] });
  });

  it('VALID ignores the pads attribute', () => {
    expect(windowGeometry([9, 9], window({ autoPad: 'VALID', pads: [5, 5, 5, 5] })).outSpatial).toEqual([7, 7]);
  });

  it('ceil_mode rounds up, but the last window must start inside the input or the begin pad', () => {
    expect(windowGeometry([6], { kernel: [3], strides: [2], dilations: [1], pads: [0, 0], autoPad: 'NOTSET', ceilMode: true }).outSpatial).toEqual([3]);
    expect(windowGeometry([6], { kernel: [3], strides: [2], dilations: [1], pads: [0, 0], autoPad: 'NOTSET' }).outSpatial).toEqual([2]);
    // [5] + end pad 1: ceil(4 / 2) + 1 = 3 windows, the third starting at 4, inside the input.
    expect(windowGeometry([5], { kernel: [2], strides: [2], dilations: [1], pads: [0, 1], autoPad: 'NOTSET', ceilMode: true }).outSpatial).toEqual([3]);
    // [4] + end pad 1: ceil(3 / 2) + 1 = 3, but the third would start at 4, in the end pad only: dropped.
    expect(windowGeometry([4], { kernel: [2], strides: [2], dilations: [1], pads: [0, 1], autoPad: 'NOTSET', ceilMode: true }).outSpatial).toEqual([2]);
  });

  it('refuses a window larger than the padded input', () => {
    expectInvalid(() => windowGeometry([2, 2], window({})), /window of 3 .* does not fit spatial dim 0 of size 2/);
    expectInvalid(() => windowGeometry([5, 5], window({ dilations: [3, 1] })), /window of 7 \(kernel 3, dilation 3\)/);
  });

  it('ConvTranspose: stride * (in - 1) + output_padding + ((k - 1) * d + 1) - pads', () => {
    const geometry = convTransposeGeometry([4, 5], { ...window({ strides: [2, 2], pads: [1, 1, 1, 1] }), outputPadding: [1, 0] });
    expect(geometry.outSpatial).toEqual([8, 9]);
  });
});

describe('Reshape targets', () => {
  it('0 copies the input dim at that position, -1 takes what is left', () => {
    expect(reshapeShape([2, 3, 4], [0, -1], false)).toEqual([2, 12]);
    expect(reshapeShape([2, 3, 4], [-1, 0, 2], false)).toEqual([4, 3, 2]);
    expect(reshapeShape([6], [2, 3], false)).toEqual([2, 3]);
  });

  it('with allowzero a 0 is a real empty dim', () => {
    expect(reshapeShape([0, 4], [0, 4], true)).toEqual([0, 4]);
    expectInvalid(() => reshapeShape([2, 4], [0, 4], true), /cannot reshape \[2, 4\] \(8 elements\)/);
  });

  it('refuses two -1s, other negative dims, a 0 beyond the input rank and element counts that differ', () => {
    expectInvalid(() => reshapeShape([2, 3], [-1, -1], false), /at most one -1/);
    expectInvalid(() => reshapeShape([2, 3], [-2, 3], false), /at most one -1 and no other negative dim/);
    expectInvalid(() => reshapeShape([6], [2, 0], false), /copies dim 1 of rank-1 input/);
    expectInvalid(() => reshapeShape([2, 3], [4, -1], false), /cannot reshape \[2, 3\] \(6 elements\) to \[4, -1\]/);
    expectInvalid(() => reshapeShape([2, 3], [5], false), /cannot reshape/);
  });
});
