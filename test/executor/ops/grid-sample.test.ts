/**
 * GridSample against onnxruntime on fresh random inputs: every mode, padding mode and
 * align_corners at opset 16 (bilinear / bicubic) and 20 (linear / cubic), volumes at 20 (linear
 * and nearest), points inside and beyond the image, sizes no multiple of a workgroup; mode names
 * of the other version refused, and volumes before opset 20 or in cubic mode answered
 * INVALID_ARGUMENT.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, NexusError } from '../../../services/domain/errors.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel } from '../../../services/executor/runtime/index.ts';
import { buildOneNodeModel, checkOneNode, compileError } from '../numerics/one-node.ts';
import { randomTensor } from '../numerics/ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const X_SHAPE = [2, 3, 7, 9];
const GRID_SHAPE = [2, 5, 11, 2];
/** Grid points up to 30% beyond [-1, 1], so every padding rule is exercised. */
const gridInput = { name: 'grid', shape: GRID_SHAPE, fill: (shape: number[]) => randomTensor(shape, 1.3) };

describe('GridSample against onnxruntime', () => {
  const modesByOpset: Record<number, string[]> = { 16: ['bilinear', 'nearest', 'bicubic'], 20: ['linear', 'nearest', 'cubic'] };
  for (const [opset, modes] of Object.entries(modesByOpset)) {
    for (const mode of modes) {
      for (const padding of ['zeros', 'border', 'reflection']) {
        for (const alignCorners of [0, 1]) {
          it(`opset ${opset}: ${mode}, ${padding}, align_corners=${alignCorners}`, () => checkOneNode(gpu, {
            op: 'GridSample', inputs: [['x', X_SHAPE], gridInput], output: [2, 3, 5, 11], opset: Number(opset),
            attributes: { mode, padding_mode: padding, align_corners: alignCorners },
          }));
        }
      }
    }
  }
  for (const mode of ['linear', 'nearest']) {
    for (const padding of ['zeros', 'border', 'reflection']) {
      for (const alignCorners of [0, 1]) {
        it(`opset 20 volume: ${mode}, ${padding}, align_corners=${alignCorners}`, () => checkOneNode(gpu, {
          op: 'GridSample', opset: 20, attributes: { mode, padding_mode: padding, align_corners: alignCorners }, output: [2, 3, 4, 3, 5],
          inputs: [['x', [2, 3, 5, 6, 7]], { name: 'grid', shape: [2, 4, 3, 5, 3], fill: (shape: number[]) => randomTensor(shape, 1.3) }],
        }));
      }
    }
  }
  it('the defaults (bilinear, zeros, align_corners=0) on a one-pixel-wide image', () => checkOneNode(gpu, {
    op: 'GridSample', inputs: [['x', [1, 2, 5, 1]], { ...gridInput, shape: [1, 3, 4, 2] }], output: [1, 2, 3, 4], opset: 16,
  }));
});

describe('GridSample refusals', () => {
  it("refuses the other version's mode names, naming the node", async () => {
    for (const [opset, mode] of [[16, 'linear'], [20, 'bilinear']] as const) {
      const error = await compileError(gpu, buildOneNodeModel({
        op: 'GridSample', inputs: [['x', X_SHAPE], gridInput], output: [2, 3, 5, 11], opset, attributes: { mode }, nodeName: 'sampler',
      }));
      expect(error.code).toBe(ErrorCode.FAILED_PRECONDITION);
      expect(error.message).toContain(`operator 'GridSample' (node 'sampler') is not supported with mode='${mode}'`);
    }
  });

  /** The error compiling or else running `bytes` on fresh inputs of these shapes rejects with. */
  async function failure(bytes: Uint8Array, shapes: Record<string, number[]>): Promise<NexusError> {
    const outcome = await compileOnnxModel(gpu, bytes, { isolate: false }).then(async (model) => {
      try {
        return await model.run(new Map(Object.entries(shapes).map(([name, shape]) => [name, randomTensor(shape)]))).then(() => undefined, (error: unknown) => error);
      } finally {
        model.dispose();
      }
    }, (error: unknown) => error);
    expect(outcome).toBeInstanceOf(NexusError);
    return outcome as NexusError;
  }

  it('answers INVALID_ARGUMENT for a volume before opset 20 or in cubic mode, and for a grid of the wrong shape', async () => {
    const shapes = { x: [1, 2, 3, 4, 5], grid: [1, 2, 2, 2, 3] };
    const volume = (opset: number, mode: string) =>
      buildOneNodeModel({ op: 'GridSample', inputs: [['x', shapes.x], ['grid', shapes.grid]], output: [1, 2, 2, 2, 2], opset, attributes: { mode } });
    const early = await failure(volume(16, 'bilinear'), shapes);
    expect(early.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(early.message).toContain("input 'X' has shape [1, 2, 3, 4, 5], expected [N, C, H, W]");
    const cubic = await failure(volume(20, 'cubic'), shapes);
    expect(cubic.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(cubic.message).toContain("cubic mode takes 4-D inputs only");
    const wrongGrid = await failure(
      buildOneNodeModel({ op: 'GridSample', inputs: [['x', X_SHAPE], ['grid', [2, 5, 11, 3]]], output: [2, 3, 5, 11], opset: 16 }),
      { x: X_SHAPE, grid: [2, 5, 11, 3] },
    );
    expect(wrongGrid.code).toBe(ErrorCode.INVALID_ARGUMENT);
    expect(wrongGrid.message).toContain("input 'grid' has shape [2, 5, 11, 3]");
  });
});
