/**
 * Whole models built in code with random weights (services/examples/models), against
 * onnxruntime on fresh inputs at batch 1 and batch 8 through one compiled model (the batch dim
 * is symbolic): a ResNet-style CNN and a 2-layer BERT-style transformer encoder. The weights'
 * seed is in each test's name, so a failure can be rebuilt exactly.
 *
 * Each model runs with both GEMM algorithms: "simd" (the default on a software adapter like
 * lavapipe) and "tiled" (the default on GPUs), so CI on either checks the other's path too
 * (an adapter without subgroups runs "simd" requests tiled).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildResNetStyle, buildTransformerEncoder, type ExampleModel } from '../../../services/examples/models/index.ts';
import { openGpu, type GpuContext } from '../../../services/executor/gpu/index.ts';
import { compileOnnxModel, type CompiledModel } from '../../../services/executor/runtime/index.ts';
import type { GemmAlgorithm } from '../../../services/executor/kernels/index.ts';
import { expectMatchesOrt, randomTensor } from './ort-reference.ts';

let gpu: GpuContext;
beforeAll(async () => { gpu = await openGpu(); });
afterAll(() => gpu?.destroy());

const ALGORITHMS: GemmAlgorithm[] = ['simd', 'tiled'];

/** Compiles `built` once for the describe block; disposes it after. */
function compiledOnce(built: ExampleModel, gemmAlgorithm: GemmAlgorithm): () => CompiledModel {
  let model: CompiledModel | undefined;
  beforeAll(async () => { model = await compileOnnxModel(gpu, built.onnx, { precision: 'fp32', gemmAlgorithm }); });
  afterAll(() => model?.dispose());
  return () => model!;
}

async function expectBatchMatches(model: CompiledModel, built: ExampleModel, batch: number, scale: number): Promise<void> {
  const inputs = new Map([[built.input.name, randomTensor(built.inputShape(batch), scale)]]);
  const outputs = await expectMatchesOrt(model, built.onnx, inputs);
  expect(outputs.get(built.output.name)!.shape).toEqual(built.output.shape.map((dim) => (dim < 0 ? batch : dim)));
}

const resnet = buildResNetStyle();
describe.each(ALGORITHMS)(`ResNet-style CNN, 3×32×32 images (seed ${resnet.seed}), %s GEMM`, (algorithm) => {
  const model = compiledOnce(resnet, algorithm);

  it('folds every BatchNormalization into its Conv', () => {
    const folded = model().fused.filter((line) => line.startsWith('BatchNormalization'));
    // stem, two per block, and the projection shortcut.
    expect(folded).toHaveLength(6);
  });

  it.each([1, 8])('matches onnxruntime at batch %i', (batch) => expectBatchMatches(model(), resnet, batch, 1));
});

const transformer = buildTransformerEncoder();
describe.each(ALGORITHMS)(`transformer encoder, 2 layers, sequence 13, hidden 64, 4 heads (seed ${transformer.seed}), %s GEMM`, (algorithm) => {
  const model = compiledOnce(transformer, algorithm);

  it('fuses the projections\' biases, both residuals and the MLP Gelu into the matrix products', () => {
    const { fused } = model();
    // Per layer: 6 biases (q, k, v, out, mlp up, mlp down), 2 residuals, 1 Gelu.
    expect(fused.filter((line) => line.startsWith('Gelu'))).toHaveLength(2);
    expect(fused.filter((line) => line.startsWith('Add'))).toHaveLength(16);
  });

  it('reads the q, k and v heads through their Transposes (the merge Transpose before the Reshape stays)', () => {
    const { fused, stepLabels } = model();
    expect(fused.filter((line) => line.startsWith('Transpose'))).toHaveLength(6);
    expect(stepLabels.filter((label) => label.startsWith('Transpose'))).toEqual([
      "Transpose 'layer0.q_heads' + Transpose 'layer0.k_heads_t' + MatMul 'layer0.scores'",
      "Transpose 'layer0.v_heads' + MatMul 'layer0.context'",
      "Transpose 'layer0.context_t'",
      "Transpose 'layer1.q_heads' + Transpose 'layer1.k_heads_t' + MatMul 'layer1.scores'",
      "Transpose 'layer1.v_heads' + MatMul 'layer1.context'",
      "Transpose 'layer1.context_t'",
    ]);
    // 31 dispatches unfolded, less the 6 Transposes now read in place.
    expect(model().stepCount).toBe(25);
  });

  it.each([1, 8])('matches onnxruntime at batch %i', (batch) => expectBatchMatches(model(), transformer, batch, 1));
});

// The newest opset the runtime takes: the same graphs declared at opset 21 must load and match.
describe('both models at opset 21', () => {
  const models = [
    buildResNetStyle({ opset: 21, channels: 8 }),
    buildTransformerEncoder({ opset: 21, layers: 1 }),
  ];
  it.each(models.map((built) => [built.onnx.byteLength, built] as const))('a %i-byte model matches onnxruntime at batch 2', async (_bytes, built) => {
    const model = await compileOnnxModel(gpu, built.onnx, { precision: 'fp32' });
    try {
      await expectBatchMatches(model, built, 2, 1);
    } finally {
      model.dispose();
    }
  });
});
