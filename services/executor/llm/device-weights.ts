/**
 * The decoder's weights on the GPU, laid out for shaders/llm/: every projection as column
 * chunks of [inputs, padded width] in the weight type (f32 or f16) with an f32 bias row (zeros
 * without a bias), SwiGLU's gate and up side by side in each chunk (gate columns, then up
 * columns), norms in the weight type, and for rotary models a (cos, sin) table of every
 * position computed in float64.
 */
import type { EngineLayout } from './engine-layout.ts';
import type { HostWeights, Matrix } from './host-weights.ts';
import type { ModelConfig } from './model-config.ts';

export interface MatrixChunk {
  readonly weight: GPUBuffer;
  readonly bias: GPUBuffer;
  readonly hasBias: boolean;
  /** The chunk's first output column and its width (before padding). */
  readonly start: number;
  readonly width: number;
  /** vec4 column groups of the padded width (of each half with SwiGLU). */
  readonly n4: number;
}

export interface EmbeddingChunk {
  readonly table: GPUBuffer;
  readonly vocabStart: number;
  readonly vocabEnd: number;
  readonly stride: number;
  /** True when the chunk is a column chunk of the tied lm_head ([hidden, columns]). */
  readonly transposed: boolean;
}

export interface DeviceLayer {
  readonly norm1Weight: GPUBuffer;
  readonly norm1Bias?: GPUBuffer;
  readonly qkv: readonly MatrixChunk[];
  readonly output: readonly MatrixChunk[];
  readonly norm2Weight: GPUBuffer;
  readonly norm2Bias?: GPUBuffer;
  /** GPT-2: c_fc. Llama: gate and up (SwiGLU). */
  readonly up: readonly MatrixChunk[];
  readonly down: readonly MatrixChunk[];
}

export interface DeviceWeights {
  readonly layers: readonly DeviceLayer[];
  readonly embedding: readonly EmbeddingChunk[];
  readonly positions?: GPUBuffer;
  readonly finalNormWeight: GPUBuffer;
  readonly finalNormBias?: GPUBuffer;
  readonly lmHead: readonly MatrixChunk[];
  readonly ropeTable?: GPUBuffer;
}

/**
 * Rotary inverse frequencies of `config` (Hugging Face's `_compute_*_parameters`): base
 * 1 / theta^(2i / d), divided by the factor for linear scaling, and for llama3 divided for long
 * wavelengths, kept for short ones and interpolated between.
 */
export function inverseFrequencies(config: ModelConfig): Float64Array {
  const half = config.headDim / 2;
  const frequencies = Float64Array.from({ length: half }, (_, i) => 1 / config.ropeTheta ** ((2 * i) / config.headDim));
  const scaling = config.ropeScaling;
  if (scaling.type === 'linear') return frequencies.map((frequency) => frequency / scaling.factor);
  if (scaling.type === 'llama3') {
    const lowWavelength = scaling.originalMaxPositions / scaling.lowFreqFactor;
    const highWavelength = scaling.originalMaxPositions / scaling.highFreqFactor;
    return frequencies.map((frequency) => {
      const wavelength = (2 * Math.PI) / frequency;
      if (wavelength < highWavelength) return frequency;
      if (wavelength > lowWavelength) return frequency / scaling.factor;
      const smooth = (scaling.originalMaxPositions / wavelength - scaling.lowFreqFactor) / (scaling.highFreqFactor - scaling.lowFreqFactor);
      return (1 - smooth) * (frequency / scaling.factor) + smooth * frequency;
    });
  }
  return frequencies;
}

/** (cos, sin) of position * inverse frequency i, for every position below `positions`. */
function ropeTable(config: ModelConfig, positions: number): Float32Array {
  const frequencies = inverseFrequencies(config);
  const half = frequencies.length;
  const table = new Float32Array(positions * half * 2);
  for (let position = 0; position < positions; position++) {
    for (let i = 0; i < half; i++) {
      const angle = position * frequencies[i];
      table[(position * half + i) * 2] = Math.cos(angle);
      table[(position * half + i) * 2 + 1] = Math.sin(angle);
    }
  }
  return table;
}

const padded4 = (count: number) => Math.ceil(count / 4) * 4;

class Uploader {
  readonly buffers: GPUBuffer[] = [];

  private readonly device: GPUDevice;
  private readonly weightType: 'f32' | 'f16';

  constructor(device: GPUDevice, weightType: 'f32' | 'f16') {
    this.device = device;
    this.weightType = weightType;
  }

  /** A storage buffer holding `values` as f32, or in the weight type when `asWeights`. */
  buffer(label: string, values: Float32Array, asWeights = true): GPUBuffer {
    const bytes = asWeights && this.weightType === 'f16' ? new Uint8Array(new Float16Array(values).buffer) : new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    const buffer = this.device.createBuffer({ label, size: Math.max(16, Math.ceil(bytes.byteLength / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST, mappedAtCreation: true });
    new Uint8Array(buffer.getMappedRange()).set(bytes);
    buffer.unmap();
    this.buffers.push(buffer);
    return buffer;
  }

  /** `matrices` (one, or gate and up) as column chunks of `widths`, with their biases. */
  chunks(label: string, matrices: readonly Matrix[], biases: ReadonlyArray<Float32Array | undefined>, widths: readonly number[]): MatrixChunk[] {
    const inputs = matrices[0].inputs;
    const outputs = matrices[0].outputs;
    const hasBias = biases.some((bias) => bias !== undefined);
    const chunks: MatrixChunk[] = [];
    let start = 0;
    for (const [index, width] of widths.entries()) {
      const columns = padded4(width);
      const rowLength = columns * matrices.length;
      const weight = new Float32Array(inputs * rowLength);
      const bias = new Float32Array(rowLength);
      matrices.forEach((matrix, half) => {
        for (let row = 0; row < inputs; row++) {
          weight.set(matrix.data.subarray(row * outputs + start, row * outputs + start + width), row * rowLength + half * columns);
        }
        const values = biases[half];
        if (values) bias.set(values.subarray(start, start + width), half * columns);
      });
      chunks.push({
        weight: this.buffer(`${label} chunk ${index}`, weight), bias: this.buffer(`${label} bias ${index}`, bias, false),
        hasBias, start, width, n4: columns / 4,
      });
      start += width;
    }
    return chunks;
  }
}

/** Uploads `weights` (see the file comment); returns them and every buffer made, for destroy. */
export function uploadWeights(device: GPUDevice, config: ModelConfig, layout: EngineLayout, weights: HostWeights): { weights: DeviceWeights; buffers: GPUBuffer[] } {
  const upload = new Uploader(device, layout.weightType);
  const { hiddenSize: hidden, vocabSize: vocab } = config;
  const optional = (label: string, values: Float32Array | undefined) => (values ? upload.buffer(label, values) : undefined);
  const layers = weights.layers.map((layer, index): DeviceLayer => {
    const label = `layer ${index}`;
    const glu = layer.gate !== undefined;
    return {
      norm1Weight: upload.buffer(`${label} norm 1`, layer.norm1Weight), norm1Bias: optional(`${label} norm 1 bias`, layer.norm1Bias),
      qkv: upload.chunks(`${label} qkv`, [layer.qkv], [layer.qkvBias], layout.chunkWidths(hidden, layout.qkvDim, false)),
      output: upload.chunks(`${label} attention output`, [layer.output], [layer.outputBias], layout.chunkWidths(layout.qDim, hidden, false)),
      norm2Weight: upload.buffer(`${label} norm 2`, layer.norm2Weight), norm2Bias: optional(`${label} norm 2 bias`, layer.norm2Bias),
      up: glu
        ? upload.chunks(`${label} gate/up`, [layer.gate!, layer.up], [layer.gateBias, layer.upBias], layout.chunkWidths(hidden, config.intermediateSize, true))
        : upload.chunks(`${label} mlp up`, [layer.up], [layer.upBias], layout.chunkWidths(hidden, config.intermediateSize, false)),
      down: upload.chunks(`${label} mlp down`, [layer.down], [layer.downBias], layout.chunkWidths(config.intermediateSize, hidden, false)),
    };
  });
  const lmHead = upload.chunks('lm_head', [weights.lmHead], [undefined], layout.chunkWidths(hidden, vocab, false));
  let embedding: EmbeddingChunk[];
  if (weights.embedding) {
    embedding = [];
    for (let start = 0; start < vocab; start += layout.embeddingRowsPerChunk) {
      const end = Math.min(vocab, start + layout.embeddingRowsPerChunk);
      embedding.push({
        table: upload.buffer(`embedding rows ${start}..${end}`, weights.embedding.subarray(start * hidden, end * hidden)),
        vocabStart: start, vocabEnd: end, stride: hidden, transposed: false,
      });
    }
  } else {
    embedding = lmHead.map((chunk) => ({ table: chunk.weight, vocabStart: chunk.start, vocabEnd: chunk.start + chunk.width, stride: chunk.n4 * 4, transposed: true }));
  }
  return {
    weights: {
      layers, embedding, lmHead,
      positions: optional('positions', weights.positions),
      finalNormWeight: upload.buffer('final norm', weights.finalNormWeight), finalNormBias: optional('final norm bias', weights.finalNormBias),
      ropeTable: config.family === 'llama' ? upload.buffer('rotary table', ropeTable(config, layout.maxSequenceTokens), false) : undefined,
    },
    buffers: upload.buffers,
  };
}
