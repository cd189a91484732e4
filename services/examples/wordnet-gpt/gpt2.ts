/**
 * GPT2LMHeadModel in TypeScript: learned position embeddings, pre-LayerNorm blocks (attention,
 * then a gelu_new MLP, each added to the residual stream), a final LayerNorm and an lm_head tied
 * to the token embeddings. `forward` keeps what `backward` needs; both reuse one workspace per
 * batch shape, so a training step allocates nothing.
 */
import {
  attentionBackward, attentionForward, crossEntropyInPlace, geluBackward, geluForward,
  layerNormBackward, layerNormForward, linearBackward, linearForward,
  type AttentionShape, type LinearScratch,
} from './layers.ts';
import { matmulTransposed, transpose } from './matmul.ts';
import { parameterCount, tensorViews, type Gpt2Config, type ModelTensors } from './weights.ts';

/** What one layer's forward pass keeps for its backward pass. */
interface LayerActivations {
  input: Float32Array;
  ln1: Float32Array; ln1Mean: Float32Array; ln1InverseStd: Float32Array;
  qkv: Float32Array; probabilities: Float32Array; attention: Float32Array;
  middle: Float32Array;
  ln2: Float32Array; ln2Mean: Float32Array; ln2InverseStd: Float32Array;
  fc: Float32Array; fcActivated: Float32Array;
}

/** Every buffer a forward and backward pass over `batch` × `length` tokens uses. */
class Workspace {
  readonly batch: number;
  readonly length: number;
  readonly rows: number;
  readonly tokens: Int32Array;
  readonly targets: Int32Array;
  readonly layers: LayerActivations[];
  readonly output: Float32Array;
  readonly lnf: Float32Array; readonly lnfMean: Float32Array; readonly lnfInverseStd: Float32Array;
  readonly logits: Float32Array;
  // Backward-only buffers.
  readonly dResidual: Float32Array; readonly dHidden: Float32Array; readonly dNormalized: Float32Array;
  readonly dQkv: Float32Array; readonly dFc: Float32Array; readonly dFcActivated: Float32Array;
  readonly attentionScores: Float32Array;
  readonly scratch: LinearScratch;

  constructor(config: Gpt2Config, batch: number, length: number) {
    this.batch = batch;
    this.length = length;
    const rows = (this.rows = batch * length);
    const c = config.n_embd;
    const floats = (count: number) => new Float32Array(count);
    this.tokens = new Int32Array(rows);
    this.targets = new Int32Array(rows);
    this.layers = Array.from({ length: config.n_layer }, () => ({
      input: floats(rows * c),
      ln1: floats(rows * c), ln1Mean: floats(rows), ln1InverseStd: floats(rows),
      qkv: floats(rows * 3 * c), probabilities: floats(batch * config.n_head * length * length), attention: floats(rows * c),
      middle: floats(rows * c),
      ln2: floats(rows * c), ln2Mean: floats(rows), ln2InverseStd: floats(rows),
      fc: floats(rows * 4 * c), fcActivated: floats(rows * 4 * c),
    }));
    this.output = floats(rows * c);
    this.lnf = floats(rows * c); this.lnfMean = floats(rows); this.lnfInverseStd = floats(rows);
    this.logits = floats(rows * config.vocab_size);
    this.dResidual = floats(rows * c); this.dHidden = floats(rows * c); this.dNormalized = floats(rows * c);
    this.dQkv = floats(rows * 3 * c); this.dFc = floats(rows * 4 * c); this.dFcActivated = floats(rows * 4 * c);
    this.attentionScores = floats(length);
    this.scratch = {
      inputTransposed: floats(4 * c * rows),
      gradientTransposed: floats(Math.max(4 * c, config.vocab_size) * rows),
    };
  }
}

/** The weights transposed to [out, in], which the forward products run on (see matmul.ts). */
interface TransposedWeights {
  wteTransposed: Float32Array;
  layers: Array<{ attn: Float32Array; attnProj: Float32Array; fc: Float32Array; fcProj: Float32Array }>;
}

export class Gpt2Model {
  readonly config: Gpt2Config;
  readonly parameters: Float32Array;
  readonly gradients: Float32Array;
  private readonly weights: ModelTensors;
  private readonly gradientViews: ModelTensors;
  private readonly transposed: TransposedWeights;
  private transposedFresh = false;
  private workspace: Workspace | undefined;

  constructor(config: Gpt2Config, parameters: Float32Array) {
    this.config = config;
    if (parameters.length !== parameterCount(config)) {
      throw new RangeError(`parameters hold ${parameters.length} floats, the config needs ${parameterCount(config)}`);
    }
    this.parameters = parameters;
    this.gradients = new Float32Array(parameters.length);
    this.weights = tensorViews(config, parameters);
    this.gradientViews = tensorViews(config, this.gradients);
    const c = config.n_embd;
    this.transposed = {
      wteTransposed: new Float32Array(config.vocab_size * c),
      layers: this.weights.layers.map(() => ({
        attn: new Float32Array(3 * c * c), attnProj: new Float32Array(c * c),
        fc: new Float32Array(4 * c * c), fcProj: new Float32Array(4 * c * c),
      })),
    };
  }

  /** Call after changing `parameters` in place (an optimizer step), before the next forward pass. */
  parametersChanged(): void {
    this.transposedFresh = false;
  }

  private refreshTransposed(): void {
    if (this.transposedFresh) return;
    const c = this.config.n_embd;
    transpose(this.transposed.wteTransposed, this.weights.wte, this.config.vocab_size, c);
    this.weights.layers.forEach((layer, index) => {
      const out = this.transposed.layers[index];
      transpose(out.attn, layer.attnWeight, c, 3 * c);
      transpose(out.attnProj, layer.attnProjWeight, c, c);
      transpose(out.fc, layer.fcWeight, c, 4 * c);
      transpose(out.fcProj, layer.fcProjWeight, 4 * c, c);
    });
    this.transposedFresh = true;
  }

  private workspaceFor(batch: number, length: number): Workspace {
    if (length < 1 || length > this.config.n_positions) {
      throw new RangeError(`sequence length must be in [1, ${this.config.n_positions}], got ${length}`);
    }
    if (this.workspace?.batch !== batch || this.workspace.length !== length) {
      this.workspace = new Workspace(this.config, batch, length);
    }
    return this.workspace;
  }

  /**
   * Logits [batch · length, vocab_size] of `tokens` (row-major [batch, length]). The returned view
   * belongs to the model and is overwritten by the next call.
   */
  logits(tokens: ArrayLike<number>, batch: number, length: number): Float32Array {
    const workspace = this.workspaceFor(batch, length);
    this.runForward(workspace, tokens);
    return workspace.logits;
  }

  /**
   * Mean next-token cross-entropy (nats) of `tokens` against `targets` (−1: not scored), keeping
   * what `backward` needs: its gradient with respect to the logits replaces the logits.
   */
  loss(tokens: ArrayLike<number>, targets: ArrayLike<number>, batch: number, length: number): number {
    const workspace = this.workspaceFor(batch, length);
    this.runForward(workspace, tokens);
    workspace.targets.set(targets);
    const { lossSum, count } = crossEntropyInPlace(workspace.logits, workspace.targets, workspace.rows, this.config.vocab_size);
    return count > 0 ? lossSum / count : 0;
  }

  private runForward(workspace: Workspace, tokens: ArrayLike<number>): void {
    this.refreshTransposed();
    const { n_embd: c, vocab_size: vocabulary, layer_norm_epsilon: epsilon } = this.config;
    const { rows, batch, length } = workspace;
    const shape: AttentionShape = { batch, length, heads: this.config.n_head, width: c };
    workspace.tokens.set(tokens);
    // Token plus position embedding, into the first layer's input.
    const embedded = workspace.layers[0]?.input ?? workspace.output;
    for (let r = 0; r < rows; r++) {
      const token = workspace.tokens[r];
      if (!(token >= 0 && token < vocabulary)) throw new RangeError(`token ${token} at ${r} is outside [0, ${vocabulary})`);
      const wte = token * c, wpe = (r % length) * c, out = r * c;
      for (let i = 0; i < c; i++) embedded[out + i] = this.weights.wte[wte + i] + this.weights.wpe[wpe + i];
    }
    this.weights.layers.forEach((weights, index) => {
      const a = workspace.layers[index];
      const transposed = this.transposed.layers[index];
      const next = workspace.layers[index + 1]?.input ?? workspace.output;
      layerNormForward(a.ln1, a.ln1Mean, a.ln1InverseStd, a.input, weights.ln1Weight, weights.ln1Bias, rows, c, epsilon);
      linearForward(a.qkv, a.ln1, transposed.attn, weights.attnBias, rows, c, 3 * c);
      attentionForward(a.attention, a.probabilities, a.qkv, shape);
      linearForward(a.middle, a.attention, transposed.attnProj, weights.attnProjBias, rows, c, c);
      for (let i = 0; i < rows * c; i++) a.middle[i] += a.input[i];
      layerNormForward(a.ln2, a.ln2Mean, a.ln2InverseStd, a.middle, weights.ln2Weight, weights.ln2Bias, rows, c, epsilon);
      linearForward(a.fc, a.ln2, transposed.fc, weights.fcBias, rows, c, 4 * c);
      geluForward(a.fcActivated, a.fc, rows * 4 * c);
      linearForward(next, a.fcActivated, transposed.fcProj, weights.fcProjBias, rows, 4 * c, c);
      for (let i = 0; i < rows * c; i++) next[i] += a.middle[i];
    });
    layerNormForward(workspace.lnf, workspace.lnfMean, workspace.lnfInverseStd, workspace.output,
      this.weights.lnfWeight, this.weights.lnfBias, rows, c, epsilon);
    // Tied lm_head: logits = ln_f(x) · wteᵀ, a product on wte as it is stored [vocab, n_embd].
    matmulTransposed(workspace.logits, workspace.lnf, this.weights.wte, rows, vocabulary, c, false);
  }

  /** Adds the gradient of the last `loss` call's loss to `gradients` (zero them between steps). */
  backward(): void {
    const workspace = this.workspace;
    if (!workspace) throw new Error('backward() needs a loss() call first');
    const { n_embd: c, vocab_size: vocabulary } = this.config;
    const { rows, batch, length, scratch } = workspace;
    const shape: AttentionShape = { batch, length, heads: this.config.n_head, width: c };
    const grads = this.gradientViews;
    const dLogits = workspace.logits;
    // lm_head: d ln_f(x) = dLogits · wte; d wte += dLogitsᵀ · ln_f(x).
    matmulTransposed(workspace.dNormalized, dLogits, this.transposed.wteTransposed, rows, c, vocabulary, false);
    transpose(scratch.gradientTransposed, dLogits, rows, vocabulary);
    transpose(scratch.inputTransposed, workspace.lnf, rows, c);
    matmulTransposed(grads.wte, scratch.gradientTransposed, scratch.inputTransposed, vocabulary, c, rows, true);
    const dResidual = workspace.dResidual;
    dResidual.fill(0);
    layerNormBackward(dResidual, grads.lnfWeight, grads.lnfBias, workspace.dNormalized, workspace.output,
      workspace.lnfMean, workspace.lnfInverseStd, this.weights.lnfWeight, rows, c);
    for (let index = this.config.n_layer - 1; index >= 0; index--) {
      const a = workspace.layers[index];
      const weights = this.weights.layers[index];
      const g = grads.layers[index];
      // MLP branch: next = middle + c_proj(gelu(c_fc(ln_2(middle)))).
      linearBackward(workspace.dFcActivated, g.fcProjWeight, g.fcProjBias, dResidual, a.fcActivated, weights.fcProjWeight,
        scratch, rows, 4 * c, c);
      geluBackward(workspace.dFc, workspace.dFcActivated, a.fc, rows * 4 * c);
      linearBackward(workspace.dNormalized, g.fcWeight, g.fcBias, workspace.dFc, a.ln2, weights.fcWeight, scratch, rows, c, 4 * c);
      layerNormBackward(dResidual, g.ln2Weight, g.ln2Bias, workspace.dNormalized, a.middle, a.ln2Mean, a.ln2InverseStd,
        weights.ln2Weight, rows, c);
      // Attention branch: middle = input + c_proj(attention(c_attn(ln_1(input)))).
      linearBackward(workspace.dHidden, g.attnProjWeight, g.attnProjBias, dResidual, a.attention, weights.attnProjWeight,
        scratch, rows, c, c);
      attentionBackward(workspace.dQkv, workspace.dHidden, a.qkv, a.probabilities, workspace.attentionScores, shape);
      linearBackward(workspace.dNormalized, g.attnWeight, g.attnBias, workspace.dQkv, a.ln1, weights.attnWeight, scratch, rows, c, 3 * c);
      layerNormBackward(dResidual, g.ln1Weight, g.ln1Bias, workspace.dNormalized, a.input, a.ln1Mean, a.ln1InverseStd,
        weights.ln1Weight, rows, c);
    }
    for (let r = 0; r < rows; r++) {
      const wte = workspace.tokens[r] * c, wpe = (r % length) * c, d = r * c;
      for (let i = 0; i < c; i++) {
        grads.wte[wte + i] += dResidual[d + i];
        grads.wpe[wpe + i] += dResidual[d + i];
      }
    }
  }
}
