/**
 * Layers for the whole-model tests, on top of GraphBuilder: each call adds a node (and its
 * random weights, fresh on every build) and returns the name of its output, so a network reads
 * as the chain of its layers. Weights are scaled by fan-in (He for Relu layers), so activations
 * keep their scale through the network and every layer matters to the output.
 *
 * Where an operator changed between opsets (Clip's bounds, Dropout's ratio, HardSwish from 14),
 * the layer writes the form its graph's opset has, as exporters do.
 */
import { float, GraphBuilder, type AttributeValue } from '../../../services/onnx/builder.ts';

const uniform = (count: number, scale: number) => Float32Array.from({ length: count }, () => (Math.random() * 2 - 1) * scale);
const between = (count: number, low: number, high: number) => Float32Array.from({ length: count }, () => low + Math.random() * (high - low));

export interface ConvOptions {
  kernel: number;
  stride?: number;
  /** Default: "same" padding for odd kernels, (kernel - 1) / 2 on each side. */
  pad?: number;
  group?: number;
  /** A BatchNormalization after the Conv (the Conv then has no bias, as exporters write it). */
  batchNorm?: boolean;
}

export class NetBuilder {
  readonly graph: GraphBuilder;
  readonly opset: number;
  private counter = 0;

  constructor(name: string, opset: number) {
    this.graph = new GraphBuilder(name);
    this.opset = opset;
  }

  private fresh(prefix: string): string {
    return `${prefix}${this.counter++}`;
  }

  /** Adds a node with one output named after `prefix`; returns the output. */
  op(opType: string, inputs: string[], attributes: Record<string, AttributeValue> = {}, prefix = opType.toLowerCase()): string {
    const output = this.fresh(prefix);
    this.graph.node(opType, inputs, [output], attributes, output);
    return output;
  }

  weight(prefix: string, shape: number[], data: Float32Array): string {
    const name = this.fresh(prefix);
    this.graph.initializer(name, 'FP32', shape, data);
    return name;
  }

  int64s(prefix: string, values: number[]): string {
    const name = this.fresh(prefix);
    this.graph.initializer(name, 'INT64', [values.length], BigInt64Array.from(values, BigInt));
    return name;
  }

  conv(input: string, inChannels: number, outChannels: number, options: ConvOptions): string {
    const { kernel, stride = 1, group = 1 } = options;
    const pad = options.pad ?? (kernel - 1) / 2;
    const fanIn = (inChannels / group) * kernel * kernel;
    const inputs = [input, this.weight('w', [outChannels, inChannels / group, kernel, kernel], uniform(outChannels * fanIn, Math.sqrt(6 / fanIn)))];
    if (!options.batchNorm) inputs.push(this.weight('b', [outChannels], uniform(outChannels, 0.1)));
    const conv = this.op('Conv', inputs, { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad], group }, 'conv');
    return options.batchNorm ? this.batchNorm(conv, outChannels) : conv;
  }

  batchNorm(input: string, channels: number): string {
    return this.op('BatchNormalization', [
      input,
      this.weight('bn_scale', [channels], between(channels, 0.7, 1.3)),
      this.weight('bn_shift', [channels], uniform(channels, 0.2)),
      this.weight('bn_mean', [channels], uniform(channels, 0.2)),
      this.weight('bn_var', [channels], between(channels, 0.5, 1.5)),
    ], { epsilon: float(1e-5) }, 'bn');
  }

  relu(input: string): string {
    return this.op('Relu', [input]);
  }

  /** Relu6 as exporters write it: Clip with bounds as attributes before opset 11, as inputs since. */
  relu6(input: string): string {
    if (this.opset < 11) return this.op('Clip', [input], { min: float(0), max: float(6) }, 'relu6_');
    const bound = (value: number) => this.weight('clip_bound', [], Float32Array.of(value));
    return this.op('Clip', [input, bound(0), bound(6)], {}, 'relu6_');
  }

  /** HardSwish from opset 14; before it, x · HardSigmoid(x) with alpha 1/6, as exporters unfold it. */
  hardSwish(input: string): string {
    if (this.opset >= 14) return this.op('HardSwish', [input]);
    const gate = this.op('HardSigmoid', [input], { alpha: float(1 / 6), beta: float(0.5) });
    return this.op('Mul', [input, gate], {}, 'hswish');
  }

  maxPool(input: string, kernel: number, stride: number, pad = 0): string {
    return this.op('MaxPool', [input], { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad] });
  }

  averagePool(input: string, kernel: number, stride: number, pad = 0, countIncludePad = 0): string {
    return this.op('AveragePool', [input], { kernel_shape: [kernel, kernel], strides: [stride, stride], pads: [pad, pad, pad, pad], count_include_pad: countIncludePad });
  }

  lrn(input: string, size = 5): string {
    return this.op('LRN', [input], { size, alpha: float(1e-4), beta: float(0.75), bias: float(1) });
  }

  /** Dropout (an identity at inference) with its ratio as an attribute before opset 12, an input since. */
  dropout(input: string): string {
    if (this.opset < 12) return this.op('Dropout', [input], { ratio: float(0.5) });
    return this.op('Dropout', [input, this.weight('ratio', [], Float32Array.of(0.5))]);
  }

  /** Gemm with a transposed weight (PyTorch's Linear) from `inFeatures` to `outFeatures`. */
  gemm(input: string, inFeatures: number, outFeatures: number, gain = 2): string {
    return this.op('Gemm', [
      input,
      this.weight('fc_w', [outFeatures, inFeatures], uniform(outFeatures * inFeatures, Math.sqrt((3 * gain) / inFeatures))),
      this.weight('fc_b', [outFeatures], uniform(outFeatures, 0.1)),
    ], { transB: 1 }, 'fc');
  }

  /** GlobalAveragePool → Flatten → Gemm: the classifier head of every CNN here. */
  classifierHead(input: string, channels: number, classes: number): string {
    const pooled = this.op('GlobalAveragePool', [input], {}, 'gap');
    const flat = this.op('Flatten', [pooled], { axis: 1 });
    return this.gemm(flat, channels, classes, 1);
  }

  /** Declares the graph's input and output and encodes the model at this builder's opset. */
  finish(input: { name: string; shape: Array<number | string> }, output: { name: string; shape: Array<number | string> }, last: string): Uint8Array {
    this.graph.input(input.name, 'FP32', input.shape);
    this.graph.node('Identity', [last], [output.name], {}, 'output');
    this.graph.output(output.name, 'FP32', output.shape);
    return this.graph.toBytes({ opset: this.opset });
  }
}
