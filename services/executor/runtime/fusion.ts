/**
 * Load-time fusion, where it saves a full pass over a tensor:
 *
 * - Conv -> BatchNormalization: the normalization is folded into the convolution's weights and
 *   bias (w' = w * s, b' = (b - mean) * s + beta with s = gamma / sqrt(var + eps)).
 * - Conv / MatMul / Gemm -> Add(per-channel or per-column constant): a bias in the epilogue.
 * - Conv / MatMul / Gemm -> Add(tensor of the output's shape): a residual in the epilogue (the
 *   shapes are proven equal on two probe input shapes first).
 * - any of those, BatchNormalization, ConvTranspose or a float binary op -> activation (Relu,
 *   Gelu, Clip, ...): the activation in the epilogue.
 * - Mul / Div by a scalar constant -> Softmax / LogSoftmax (attention's scores / sqrt(d)): the
 *   factor in the softmax kernel, which reads the Mul / Div's input instead.
 * - Transpose -> MatMul operand (attention's heads split out of [N, S, heads, d]): the product
 *   reads the Transpose's input through permuted strides instead of a transposed copy.
 *
 * An intermediate is only fused away when its one reader is the next node of the chain and it
 * is not a graph output.
 */
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { IDENTITY, FUSABLE_ACTIVATIONS, ONNX_UNARY, unaryFunction, type UnaryFunction } from '../kernels/unary-ops.ts';
import { floatAttribute, intAttribute, intsAttribute, stringAttribute } from './attributes.ts';
import type { Epilogue, GpuTraits, Location, OperatorSpec } from './operators.ts';
import { foldBatchNorm } from './operators-gemm.ts';
import { kindOf, toNumbers, type Precision } from './values.ts';

export interface PlacedNode {
  node: NodeProto;
  spec: OperatorSpec;
  outputTypes: Datatype[];
  host: boolean;
}

/** A node that takes over the nodes after it. */
export interface FusedHead {
  readonly epilogue: Epilogue;
  /** Values appended to the node's inputs (bias, residual), indexed by the epilogue. */
  readonly extraInputs: readonly string[];
  /** The last absorbed node's output, which the fused step now writes. */
  readonly output: string;
  readonly label: string;
  /** The fused step runs where this (last absorbed) node ran. */
  readonly runsAt: NodeProto;
  /** The head reads this value as its input 0 instead (the input of a node absorbed before it). */
  readonly input0?: string;
  /** Likewise for input 1 (a Transpose folded into a MatMul's B). */
  readonly input1?: string;
}

export interface FusionPlan {
  readonly heads: ReadonlyMap<NodeProto, FusedHead>;
  readonly absorbed: ReadonlySet<NodeProto>;
  /** "Relu 'relu_3' into Conv 'conv_2'", one per absorbed node. */
  readonly fusedDescriptions: string[];
}

export interface FusionContext {
  readonly opset: number;
  readonly precision: Precision;
  readonly traits: GpuTraits;
  readonly constants: Map<string, HostTensor>;
  readonly datatypes: Map<string, Datatype>;
  readonly locations: Map<string, Location>;
}

/** Every value's shapes for a few probe input shapes (undefined when the model refuses them). */
export type Probe = () => Array<ReadonlyMap<string, readonly number[]>> | undefined;

const floats = (tensor: HostTensor) => Float32Array.from(toNumbers(tensor));

function readers(placed: readonly PlacedNode[]): Map<string, Array<{ node: NodeProto; index: number }>> {
  const map = new Map<string, Array<{ node: NodeProto; index: number }>>();
  for (const { node } of placed) {
    node.input.forEach((name, index) => {
      if (name) map.set(name, [...(map.get(name) ?? []), { node, index }]);
    });
  }
  return map;
}

function setConstant(context: Pick<FusionContext, 'constants' | 'datatypes' | 'locations'>, name: string, tensor: HostTensor): string {
  context.constants.set(name, tensor);
  context.datatypes.set(name, tensor.datatype);
  context.locations.set(name, 'constant');
  return name;
}

/**
 * Folds every BatchNormalization that directly follows a Conv with constant weights into it.
 * Returns the remaining nodes and one "BatchNormalization 'bn' into Conv 'conv'" per fold.
 */
export function foldBatchNorms(
  placed: readonly PlacedNode[], context: Pick<FusionContext, 'constants' | 'datatypes' | 'locations'>, graphOutputs: readonly string[],
): { placed: PlacedNode[]; foldedDescriptions: string[] } {
  const foldedDescriptions: string[] = [];
  const readBy = readers(placed);
  const byOutput = new Map<string, PlacedNode>();
  for (const entry of placed) for (const name of entry.node.output) if (name) byOutput.set(name, entry);
  const replaced = new Map<PlacedNode, PlacedNode>();
  const removed = new Set<PlacedNode>();
  for (const bn of placed) {
    if (bn.host || bn.node.opType !== 'BatchNormalization') continue;
    const conv = byOutput.get(bn.node.input[0]);
    if (!conv || conv.host || conv.node.opType !== 'Conv' || replaced.has(conv)) continue;
    const convOutput = conv.node.output[0];
    if (graphOutputs.includes(convOutput) || (readBy.get(convOutput)?.length ?? 0) !== 1) continue;
    const weights = context.constants.get(conv.node.input[1]);
    const bias = conv.node.input[2] ? context.constants.get(conv.node.input[2]) : undefined;
    const statistics = bn.node.input.slice(1).map((name) => context.constants.get(name));
    if (!weights || (conv.node.input[2] && !bias) || statistics.some((tensor) => !tensor)) continue;
    if (kindOf(weights.datatype) !== 'float' || intAttribute(bn.node, 'training_mode', 0) !== 0) continue;
    const [gamma, beta, mean, variance] = statistics.map((tensor) => floats(tensor!));
    const { scale, shift } = foldBatchNorm(gamma, beta, mean, variance, floatAttribute(bn.node, 'epsilon', 1e-5));
    const outChannels = weights.shape[0];
    if (scale.length !== outChannels) continue;
    const w = floats(weights);
    const perChannel = w.length / outChannels;
    const foldedWeights = new Float32Array(w.length);
    for (let index = 0; index < w.length; index++) foldedWeights[index] = w[index] * scale[Math.floor(index / perChannel)];
    const b = bias ? floats(bias) : new Float32Array(outChannels);
    const foldedBias = Float32Array.from(b, (value, channel) => value * scale[channel] + shift[channel]);
    const prefix = conv.node.name || convOutput;
    const weightsName = setConstant(context, `${prefix}::bn_folded_weights`, { datatype: 'FP32', shape: [...weights.shape], data: foldedWeights });
    const biasName = setConstant(context, `${prefix}::bn_folded_bias`, { datatype: 'FP32', shape: [outChannels], data: foldedBias });
    const node: NodeProto = { ...conv.node, input: [conv.node.input[0], weightsName, biasName], output: [bn.node.output[0]] };
    replaced.set(conv, { ...conv, node });
    removed.add(bn);
    foldedDescriptions.push(`BatchNormalization '${bn.node.name}' into Conv '${conv.node.name}'`);
  }
  return { placed: placed.filter((entry) => !removed.has(entry)).map((entry) => replaced.get(entry) ?? entry), foldedDescriptions };
}

const GEMM_HEADS = new Set(['Conv', 'MatMul', 'Gemm']);
const ACTIVATION_HEADS = new Set(['BatchNormalization', 'ConvTranspose', 'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Min', 'Max', 'PRelu']);

/** The activation of a fusable node, or undefined (e.g. Clip bounds not known at load). */
function activationOf(node: NodeProto, constants: ReadonlyMap<string, HostTensor>, opset: number): UnaryFunction | undefined {
  if (!FUSABLE_ACTIVATIONS.has(node.opType)) return undefined;
  if (node.opType === 'Clip') {
    const bound = (index: number, name: string, fallback: number) => {
      if (opset < 11) return floatAttribute(node, name, fallback);
      if (!node.input[index]) return fallback;
      const tensor = constants.get(node.input[index]);
      return tensor ? toNumbers(tensor)[0] : undefined;
    };
    const min = bound(1, 'min', -3.4028234663852886e38);
    const max = bound(2, 'max', 3.4028234663852886e38);
    if (min === undefined || max === undefined) return undefined;
    return unaryFunction('Clip', { min, max });
  }
  const values: Record<string, number | string> = {};
  if (node.opType === 'Gelu') values.approximate = stringAttribute(node, 'approximate', 'none');
  for (const [name, fallback] of Object.entries(ONNX_UNARY[node.opType]?.attributes ?? {})) values[name] = floatAttribute(node, name, fallback);
  return unaryFunction(node.opType, values);
}

/**
 * A constant `addend` as a 1-D per-column / per-channel bias of `head`, or undefined when it is
 * not one. The head's own constant bias (Conv) is added in.
 */
function biasOf(head: NodeProto, addend: HostTensor, constants: ReadonlyMap<string, HostTensor>): Float32Array | undefined {
  if (kindOf(addend.datatype) !== 'float') return undefined;
  const weights = constants.get(head.input[1]);
  if (!weights) return undefined;
  let columns: number;
  let position: number;
  if (head.opType === 'Conv') {
    columns = weights.shape[0];
    // Output [N, C, spatial...]: the addend right-aligned must hold C at dim 1, ones elsewhere.
    position = weights.shape.length - 1 - 1;
    if (head.input[2] && !constants.get(head.input[2])) return undefined;
  } else if (head.opType === 'MatMul') {
    if (weights.shape.length !== 2) return undefined;
    columns = weights.shape[1];
    position = 0;
  } else {
    if (head.input[2] || weights.shape.length !== 2) return undefined;
    columns = intAttribute(head, 'transB', 0) === 1 ? weights.shape[0] : weights.shape[1];
    position = 0;
  }
  // `position`: how many dims after the column dim the addend must have (all of size 1).
  const shape = addend.shape;
  const columnDim = shape.length - 1 - position;
  if (columnDim < 0 || shape[columnDim] !== columns || shape.some((dim, index) => index !== columnDim && dim !== 1)) {
    // A single value broadcasts to every column as well.
    if (shape.every((dim) => dim === 1)) {
      if (head.opType === 'Conv' && shape.length > weights.shape.length) return undefined;
      const value = toNumbers(addend)[0];
      return withOwnBias(head, new Float32Array(columns).fill(value), constants);
    }
    return undefined;
  }
  if (head.opType === 'Conv' && shape.length > weights.shape.length) return undefined;
  return withOwnBias(head, floats(addend), constants);
}

function withOwnBias(head: NodeProto, bias: Float32Array, constants: ReadonlyMap<string, HostTensor>): Float32Array {
  if (head.opType !== 'Conv' || !head.input[2]) return bias;
  const own = floats(constants.get(head.input[2])!);
  return Float32Array.from(bias, (value, index) => value + own[index]);
}

const sameShape = (left: readonly number[] | undefined, right: readonly number[] | undefined) =>
  Boolean(left && right && left.length === right.length && left.every((dim, index) => dim === right[index]));

const SCALED_SOFTMAX = new Set(['Softmax', 'LogSoftmax']);

/**
 * The factor of a Mul / Div by a single-value float constant, and the input it scales; undefined
 * for anything else (a Div of a constant by a tensor, a zero or non-finite factor).
 */
function scaleOf(node: NodeProto, constants: ReadonlyMap<string, HostTensor>): { factor: number; input: string; constant: HostTensor } | undefined {
  if ((node.opType !== 'Mul' && node.opType !== 'Div') || node.input.length !== 2) return undefined;
  const candidates = node.opType === 'Div' ? [1] : [1, 0];
  for (const index of candidates) {
    const constant = constants.get(node.input[index]);
    const input = node.input[1 - index];
    if (!constant || constants.has(input) || kindOf(constant.datatype) !== 'float' || constant.shape.some((dim) => dim !== 1)) continue;
    const value = toNumbers(constant)[0];
    const factor = node.opType === 'Div' ? 1 / value : value;
    if (value === 0 || !Number.isFinite(value) || !Number.isFinite(factor)) continue;
    return { factor, input, constant };
  }
  return undefined;
}

/**
 * Softmax / LogSoftmax heads that take over the Mul / Div by a constant before them: saves a
 * dispatch and a pass over the scores. Only when the product's one reader is the softmax, it is
 * not a graph output, and (for a constant of rank > 0) the product provably has the scaled
 * input's shape (a [1, 1, 1, 1, 1] factor would add dims, which moves a softmax axis).
 */
function planScaledSoftmaxes(
  placed: readonly PlacedNode[], context: FusionContext, graphOutputs: readonly string[], probe: Probe,
  readBy: ReadonlyMap<string, Array<{ node: NodeProto; index: number }>>, heads: Map<NodeProto, FusedHead>, absorbed: Set<NodeProto>,
  fusedDescriptions: string[],
): void {
  const byOutput = new Map<string, PlacedNode>();
  for (const entry of placed) for (const name of entry.node.output) if (name) byOutput.set(name, entry);
  for (const softmax of placed) {
    if (softmax.host || !SCALED_SOFTMAX.has(softmax.node.opType) || heads.has(softmax.node)) continue;
    const scaledName = softmax.node.input[0];
    const producer = byOutput.get(scaledName);
    if (!producer || producer.host || absorbed.has(producer.node) || heads.has(producer.node)) continue;
    if (graphOutputs.includes(scaledName) || (readBy.get(scaledName)?.length ?? 0) !== 1) continue;
    if (kindOf(producer.outputTypes[0]) !== 'float') continue;
    const scale = scaleOf(producer.node, context.constants);
    if (!scale || kindOf(context.datatypes.get(scale.input) ?? 'FP32') !== 'float') continue;
    if (scale.constant.shape.length > 0) {
      const shapes = probe();
      if (!shapes || !shapes.every((walk) => sameShape(walk.get(scale.input), walk.get(scaledName)))) continue;
    }
    absorbed.add(producer.node);
    fusedDescriptions.push(`${producer.node.opType} '${producer.node.name}' into ${softmax.node.opType} '${softmax.node.name}'`);
    heads.set(softmax.node, {
      epilogue: { activation: IDENTITY, inputScale: scale.factor },
      extraInputs: [],
      output: softmax.node.output[0],
      label: [producer.node, softmax.node].map((node) => `${node.opType} '${node.name}'`).join(' + '),
      runsAt: softmax.node,
      input0: scale.input,
    });
  }
}

/**
 * MatMuls that read an operand through a Transpose's permutation instead of its copy: saves a
 * dispatch and a pass over the operand. Any permutation is a strided view, so each one folds,
 * but only when the Transpose's one reader is this MatMul, its output is not a graph output,
 * its input is computed on the device (a constant B is re-laid out for the vec4 loader instead),
 * and the perm is explicit. Runs after the epilogue chains, whose heads it extends.
 */
function planTransposedOperands(
  placed: readonly PlacedNode[], context: FusionContext, graphOutputs: readonly string[],
  readBy: ReadonlyMap<string, Array<{ node: NodeProto; index: number }>>, heads: Map<NodeProto, FusedHead>, absorbed: Set<NodeProto>,
  fusedDescriptions: string[],
): void {
  const byOutput = new Map<string, PlacedNode>();
  for (const entry of placed) for (const name of entry.node.output) if (name) byOutput.set(name, entry);
  for (const matmul of placed) {
    if (matmul.host || matmul.node.opType !== 'MatMul' || absorbed.has(matmul.node)) continue;
    const folded: Array<{ index: number; transpose: NodeProto; perm: number[] }> = [];
    for (const index of [0, 1]) {
      const name = matmul.node.input[index];
      const transpose = name ? byOutput.get(name) : undefined;
      if (!transpose || transpose.host || transpose.node.opType !== 'Transpose') continue;
      if (absorbed.has(transpose.node) || heads.has(transpose.node)) continue;
      if (graphOutputs.includes(name) || (readBy.get(name)?.length ?? 0) !== 1) continue;
      const source = transpose.node.input[0];
      if (!source || context.constants.has(source) || context.locations.get(source) === 'host') continue;
      if (kindOf(context.datatypes.get(source) ?? 'FP32') !== 'float') continue;
      const perm = intsAttribute(transpose.node, 'perm');
      if (!perm || perm.length < 2) continue;
      folded.push({ index, transpose: transpose.node, perm });
    }
    if (folded.length === 0) continue;
    const existing = heads.get(matmul.node);
    for (const { transpose } of folded) {
      absorbed.add(transpose);
      fusedDescriptions.push(`Transpose '${transpose.name}' into MatMul '${matmul.node.name}'`);
    }
    const a = folded.find(({ index }) => index === 0);
    const b = folded.find(({ index }) => index === 1);
    const ownLabel = existing?.label ?? `MatMul '${matmul.node.name}'`;
    heads.set(matmul.node, {
      epilogue: { ...(existing?.epilogue ?? { activation: IDENTITY }), aPerm: a?.perm, bPerm: b?.perm },
      extraInputs: existing?.extraInputs ?? [],
      output: existing?.output ?? matmul.node.output[0],
      label: [...folded.map(({ transpose }) => `Transpose '${transpose.name}'`), ownLabel].join(' + '),
      runsAt: existing?.runsAt ?? matmul.node,
      input0: a ? a.transpose.input[0] : existing?.input0,
      input1: b ? b.transpose.input[0] : existing?.input1,
    });
  }
}

/** Decides which nodes fuse into which; registers fused biases as constants. */
export function planFusion(placed: readonly PlacedNode[], context: FusionContext, graphOutputs: readonly string[], probeShapes: Probe): FusionPlan {
  const readBy = readers(placed);
  const entryOf = new Map<NodeProto, PlacedNode>(placed.map((entry) => [entry.node, entry]));
  const heads = new Map<NodeProto, FusedHead>();
  const absorbed = new Set<NodeProto>();
  const fusedDescriptions: string[] = [];
  let probeResult: Array<ReadonlyMap<string, readonly number[]>> | undefined | null = null;
  const probe: Probe = () => {
    if (probeResult === null) probeResult = probeShapes();
    return probeResult;
  };

  planScaledSoftmaxes(placed, context, graphOutputs, probe, readBy, heads, absorbed, fusedDescriptions);

  for (const head of placed) {
    if (head.host || absorbed.has(head.node) || heads.has(head.node)) continue;
    const opType = head.node.opType;
    const gemm = GEMM_HEADS.has(opType);
    if (!gemm && !ACTIVATION_HEADS.has(opType)) continue;
    if (kindOf(head.outputTypes[0]) !== 'float') continue;
    let current = head.node.output[0];
    let activation = IDENTITY;
    let bias: number | undefined;
    let residual: number | undefined;
    const extraInputs: string[] = [];
    const chain: NodeProto[] = [];
    for (;;) {
      if (graphOutputs.includes(current)) break;
      const reads = readBy.get(current) ?? [];
      if (reads.length !== 1) break;
      const { node: next, index } = reads[0];
      const entry = entryOf.get(next);
      if (!entry || entry.host || absorbed.has(next) || heads.has(next)) break;
      if (gemm && next.opType === 'Add' && next.input.length === 2 && activation === IDENTITY) {
        const other = next.input[1 - index];
        const constant = context.constants.get(other);
        const extraBase = head.node.input.length;
        const biasValues = bias === undefined && residual === undefined && constant ? biasOf(head.node, constant, context.constants) : undefined;
        if (biasValues) {
          bias = extraBase + extraInputs.length;
          extraInputs.push(setConstant(context, `${head.node.name || head.node.output[0]}::fused_bias`, { datatype: 'FP32', shape: [biasValues.length], data: biasValues }));
        } else if (residual === undefined && other !== current && kindOf(context.datatypes.get(other) ?? 'FP32') === 'float') {
          const shapes = probe();
          if (!shapes || !shapes.every((walk) => sameShape(walk.get(other), walk.get(next.output[0])) && sameShape(walk.get(current), walk.get(next.output[0])))) break;
          residual = extraBase + extraInputs.length;
          extraInputs.push(other);
        } else {
          break;
        }
      } else {
        const fn = activation === IDENTITY ? activationOf(next, context.constants, context.opset) : undefined;
        if (!fn) break;
        activation = fn;
      }
      chain.push(next);
      current = next.output[0];
      if (activation !== IDENTITY) break;
    }
    if (chain.length === 0) continue;
    for (const node of chain) {
      absorbed.add(node);
      fusedDescriptions.push(`${node.opType} '${node.name}' into ${opType} '${head.node.name}'`);
    }
    heads.set(head.node, {
      epilogue: { activation, bias, residual },
      extraInputs,
      output: current,
      label: [head.node, ...chain].map((node) => `${node.opType} '${node.name}'`).join(' + '),
      runsAt: chain[chain.length - 1],
    });
  }
  planTransposedOperands(placed, context, graphOutputs, readBy, heads, absorbed, fusedDescriptions);
  return { heads, absorbed, fusedDescriptions };
}
