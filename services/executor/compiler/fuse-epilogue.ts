/**
 * Fusion rule: the epilogue. A Conv / MatMul / Gemm takes over the Add after it when the addend
 * is a per-channel or per-column constant (a bias) or a tensor of the output's shape (a
 * residual, proven equal on two probe input shapes first), and then an activation (Relu, Gelu,
 * Clip, ...); a BatchNormalization, ConvTranspose or float binary op takes over the activation
 * after it. Each saves a full pass over a tensor. An intermediate is only fused away when its
 * one reader is the next node of the chain and it is not a graph output.
 */
import type { HostTensor, NodeProto } from '../../onnx/model.ts';
import { IDENTITY, type UnaryFunction } from '../kernels/index.ts';
import { epilogueActivation, intAttribute } from '../ops/index.ts';
import { kindOf, numberView, sameShape, toNumbers } from '../tensor/index.ts';
import { applyFusion, type FusionContext } from './fusion-rule.ts';
import { describeNode, hasSingleReader, readersOf, type Graph, type GraphNode } from './graph.ts';

const floats = (tensor: HostTensor) => Float32Array.from(numberView(tensor));

const GEMM_HEADS = new Set(['Conv', 'MatMul', 'Gemm']);
const ACTIVATION_HEADS = new Set(['BatchNormalization', 'ConvTranspose', 'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Min', 'Max', 'PRelu']);

/** The activation `node` computes when it is one an epilogue absorbs (Clip only with bounds known at load). */
function activationOf(node: NodeProto, constants: ReadonlyMap<string, HostTensor>): UnaryFunction | undefined {
  return epilogueActivation(node, node.input.map((name) => ({ value: name ? constants.get(name) : undefined })));
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

/** The graph with every GEMM / convolution / binary head fused with the bias, residual and activation after it. */
export function fuseEpilogues(graph: Graph, context: FusionContext): Graph {
  const readers = readersOf(graph.nodes);
  const replaced = new Map<GraphNode, GraphNode>();
  const absorbed = new Set<GraphNode>();
  const added: Array<[string, HostTensor]> = [];
  const constants = new Map(graph.constants);
  const fused: string[] = [];
  for (const head of graph.nodes) {
    if (head.host || head.fusion || absorbed.has(head) || replaced.has(head)) continue;
    const opType = head.node.opType;
    const gemm = GEMM_HEADS.has(opType);
    if (!gemm && !ACTIVATION_HEADS.has(opType)) continue;
    if (kindOf(head.outputTypes[0]) !== 'float') continue;
    let current = head.node.output[0];
    let activation = IDENTITY;
    let bias: number | undefined;
    let residual: number | undefined;
    const extraInputs: string[] = [];
    const chain: GraphNode[] = [];
    for (;;) {
      if (!hasSingleReader(graph, readers, current)) break;
      const { entry: next, index } = readers.get(current)![0];
      if (next.host || next.fusion || absorbed.has(next) || replaced.has(next)) break;
      if (gemm && next.node.opType === 'Add' && next.node.input.length === 2 && activation === IDENTITY) {
        const other = next.node.input[1 - index];
        const constant = constants.get(other);
        const extraBase = head.node.input.length;
        const biasValues = bias === undefined && residual === undefined && constant ? biasOf(head.node, constant, constants) : undefined;
        if (biasValues) {
          bias = extraBase + extraInputs.length;
          const name = `${head.node.name || head.node.output[0]}::fused_bias`;
          const tensor: HostTensor = { datatype: 'FP32', shape: [biasValues.length], data: biasValues };
          constants.set(name, tensor);
          added.push([name, tensor]);
          extraInputs.push(name);
        } else if (residual === undefined && other !== current && kindOf(graph.datatypes.get(other) ?? 'FP32') === 'float') {
          const output = next.node.output[0];
          const shapes = context.probe();
          if (!shapes || !shapes.every((walk) => sameShape(walk.get(other), walk.get(output)) && sameShape(walk.get(current), walk.get(output)))) break;
          residual = extraBase + extraInputs.length;
          extraInputs.push(other);
        } else {
          break;
        }
      } else {
        const fn = activation === IDENTITY ? activationOf(next.node, constants) : undefined;
        if (!fn) break;
        activation = fn;
      }
      chain.push(next);
      current = next.node.output[0];
      if (activation !== IDENTITY) break;
    }
    if (chain.length === 0) continue;
    for (const entry of chain) {
      absorbed.add(entry);
      fused.push(`${entry.node.opType} '${entry.node.name}' into ${opType} '${head.node.name}'`);
    }
    replaced.set(head, {
      ...head,
      node: { ...head.node, output: [current] },
      position: chain[chain.length - 1].position,
      fusion: { epilogue: { activation, bias, residual }, extraInputs, label: [head.node, ...chain.map((entry) => entry.node)].map(describeNode).join(' + ') },
    });
  }
  return applyFusion(graph, { replaced, absorbed, added, fused });
}
