/**
 * Attention as ORT's transformer optimizer fuses it, on the GEMM, element-wise and Softmax kernels:
 *   Attention (com.microsoft): x [B, S, Din] times packed weights [Din, Dq + Dk + Dv] (+ bias) gives
 *     Q, K, V, with an optional key / value cache (past before this step's K and V, present
 *     after: GPT-2's decoding); MultiHeadAttention (com.microsoft) takes Q [B, S, Dq], K [B, L, Dk], V [B, L, Dv] (+ a
 *     packed bias) directly. Then per head (Dq = num_heads * H):
 *       scores = scale * Q K^T (scale 1 / sqrt(H) by default) + mask + attention_bias
 *       output = Softmax(scores) V, heads merged back into [B, S, Dv]
 *   mask: an int32 raw mask or padding positions (contrib-attention-mask.ts) adds mask_filter_value
 *   (-10000 by default) where a key is masked; unidirectional makes every score above the
 *   diagonal the lowest float (no weight, whatever the mask), as ORT's CPU kernel does.
 * The heads are strided views: Q and K are read through permutations by the scores MatMul, V by
 * the context MatMul, and one Transpose merges the heads into the output.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { Datatype } from '../../onnx/datatypes.ts';
import type { HostTensor } from '../../onnx/model.ts';
import { binaryDispatch, binaryVariant, BINARY_OPS, IDENTITY, UNARY_OPS, type UnaryFunction } from '../kernels/index.ts';
import { product, toStorageBytes } from '../tensor/index.ts';
import { attributeOf, booleanAttribute, floatAttribute, intAttribute, intsAttribute, invalidNode, unsupported } from './attributes.ts';
import type { DeviceOperator, LoadContext, NodeInput, OperatorSpec } from './contract.ts';
import { concatSpec, sliceSpec, transposeSpec } from './data-movement.ts';
import { binarySpec } from './elementwise.ts';
import { matMulSpec } from './gemm-conv.ts';
import { required } from './parameters.ts';
import { softmaxSpec } from './softmax.ts';
import { constantFloats, fp32, outputStorage } from './spec-parts.ts';
import { maskTermOperator } from './contrib-attention-mask.ts';
import { createComposite, intAttr, intsAttr, type Composite, type Value } from './contrib-composite.ts';

const addSpec = binarySpec('Add');
export const scaleBy = (alpha: number, beta = 0): UnaryFunction => ({ op: UNARY_OPS.Scale, alpha, beta });

/** What the attention core needs: Q, K, V as [B, S|L, heads * head size] values and the score terms. */
interface AttentionProblem {
  readonly q: Value;
  readonly k: Value;
  readonly v: Value;
  readonly heads: number;
  /** The scale of Q K^T for the plan's input shapes. */
  readonly scale: (inputs: ReadonlyArray<NodeInput | undefined>) => number;
  /** The node input holding the int32 mask, when there is one. */
  readonly mask?: number;
  readonly maskFilter: number;
  readonly attentionBias?: Value;
  readonly causal: boolean;
  /** The key / value cache, when the node has one (past before this step's keys and values, present after). */
  readonly cache?: KeyValueCache;
}

/**
 * A key / value cache in [B, heads, length, H]: Attention's packs K and V in one tensor
 * [2, B, heads, P, H] (`stacked`), MultiHeadAttention's has one tensor each.
 */
export type KeyValueCache =
  | { readonly stacked: true; readonly past?: Value; readonly present?: Value }
  | { readonly stacked: false; readonly pastKeys?: Value; readonly pastValues?: Value; readonly presentKeys?: Value; readonly presentValues?: Value };

/** The cache's past keys and values [B, heads, P, H], when there is a past. */
function pastOf(program: Composite, cache: KeyValueCache): [Value, Value] | undefined {
  if (!cache.stacked) return cache.pastKeys && cache.pastValues ? [cache.pastKeys, cache.pastValues] : undefined;
  const past = cache.past;
  if (!past) return undefined;
  // past[0] is the first half of past's buffer (a view); past[1] a Slice of the second.
  const keys = program.view(past, (shape) => {
    if (shape.length !== 5 || shape[0] !== 2) throw invalidArgument(`attention past has shape [${shape}]; it must be (2, batch, num_heads, past_length, head_size)`);
    return shape.slice(1);
  });
  const second = program.temp();
  program.stage(sliceSpec, 'Slice', [past], [second], { attributes: [intsAttr('starts', [1]), intsAttr('ends', [2]), intsAttr('axes', [0])], opset: 9 });
  return [keys, program.view(second, (shape) => shape.slice(1))];
}

/**
 * K and V of this step in [B, heads, S, H], after the cache's past when there is one, the
 * cache's present written from them when it is named. Returns the K and V the scores and the
 * context read, [B, heads, T, H].
 */
export function keyValueCache(program: Composite, k: Value, v: Value, cache: KeyValueCache): [Value, Value] {
  const toHeadsFirst = (value: Value, into: Value = program.temp()) => {
    program.stage(transposeSpec, 'Transpose', [value], [into], { attributes: [intsAttr('perm', [0, 2, 1, 3])] });
    return into;
  };
  const joined = (before: Value, after: Value, into: Value) => {
    program.stage(concatSpec, 'Concat', [before, after], [into], { attributes: [intAttr('axis', 2)] });
    return into;
  };
  const past = pastOf(program, cache);
  // MultiHeadAttention's present tensors are the joined keys and values themselves.
  const [presentKeys, presentValues] = cache.stacked ? [undefined, undefined] : [cache.presentKeys, cache.presentValues];
  const [keys, values] = past
    ? [joined(past[0], toHeadsFirst(k), presentKeys ?? program.temp()), joined(past[1], toHeadsFirst(v), presentValues ?? program.temp())]
    : [toHeadsFirst(k, presentKeys), toHeadsFirst(v, presentValues)];
  if (cache.stacked && cache.present) {
    const stacked = (value: Value) => program.view(value, (shape) => [1, ...shape]);
    program.stage(concatSpec, 'Concat', [stacked(keys), stacked(values)], [cache.present], { attributes: [intAttr('axis', 0)] });
  }
  return [keys, values];
}

/** [B, S, heads * H] viewed as [B, S, heads, H]. */
export function headsView(program: Composite, value: Value, heads: number, what: string): Value {
  return program.view(value, (shape) => {
    if (shape.length !== 3 || shape[2] % heads !== 0) throw invalidArgument(`attention ${what} has shape [${shape}]; it must be [batch, length, num_heads * head_size] with num_heads=${heads}`);
    return [shape[0], shape[1], heads, shape[2] / heads];
  });
}

/** The lowest finite value of each float storage: what a causally masked score becomes. */
const LOWEST = { f32: -3.4028234663852886e38, f16: -65504 } as const;

/**
 * Stage input 0 (scores [B, heads, S, T]) plus the causal mask: the lowest float where key t
 * comes after query s (past = T - S keys before the first query), which ORT's CPU kernel sets
 * whatever the padding mask said, so those keys get no weight at all. The mask depends only on
 * S and T, so each plan computes it on the host (a table in the scores' storage type).
 */
export function causalOperator(context: LoadContext): DeviceOperator {
  const storage = outputStorage(context);
  const lowest = storage === 'f16' ? LOWEST.f16 : LOWEST.f32;
  return {
    kind: 'kernel',
    variants: [binaryVariant(storage, storage, storage, false)],
    plan(inputs, maxPerDimension) {
      const shape = [...required(inputs, 0).shape];
      const [queries, keys] = shape.slice(-2);
      const past = keys - queries;
      const mask = new Float32Array(queries * keys);
      for (let s = 0; s < queries; s++) for (let t = past + s + 1; t < keys; t++) mask[s * keys + t] = lowest;
      const bytes = toStorageBytes(fp32([queries, keys], mask), storage, 'causal mask');
      const words = new Uint32Array(Math.max(1, Math.ceil(bytes.byteLength / 4)));
      new Uint8Array(words.buffer).set(bytes);
      return {
        outputShapes: [shape],
        tables: [words],
        dispatches: [{ ...binaryDispatch(BINARY_OPS.Add, IDENTITY, shape, [queries, keys], shape, maxPerDimension), bindings: [{ input: 0 }, { table: 0 }, { output: 0 }] }],
      };
    },
  };
}

/** The attention of `problem` into node output 0. */
function attentionCore(program: Composite, context: LoadContext, problem: AttentionProblem): void {
  const { heads } = problem;
  const q = headsView(program, problem.q, heads, 'Q');
  let k = headsView(program, problem.k, heads, 'K');
  let v = headsView(program, problem.v, heads, 'V');
  // Without a cache K and V are read in place through permutations; with one they are copied
  // heads first, next to the past's.
  const cached = Boolean(problem.cache);
  if (problem.cache) [k, v] = keyValueCache(program, k, v, problem.cache);
  // The scale may depend on the head size, known per plan: the check runs first in every plan and
  // the scores MatMul reads its epilogue's activation when it plans, right after.
  let scale = 1;
  program.check((inputs) => { scale = problem.scale(inputs); });
  let scores = program.temp();
  program.stage(matMulSpec, 'MatMul', [q, k], [scores], {
    epilogue: { get activation() { return scaleBy(scale); }, aPerm: [0, 2, 1, 3], bPerm: cached ? [0, 1, 3, 2] : [0, 2, 3, 1] },
  });
  const add = (term: Value) => {
    const sum = program.temp();
    program.stage(addSpec, 'Add', [scores, term], [sum]);
    scores = sum;
  };
  if (problem.mask !== undefined) {
    const term = program.temp();
    program.kernel(maskTermOperator(context, problem.mask, problem.maskFilter), [program.input(problem.mask), scores], [term]);
    add(term);
  }
  if (problem.causal) {
    const masked = program.temp();
    program.kernel(causalOperator(context), [scores], [masked]);
    scores = masked;
  }
  if (problem.attentionBias) add(problem.attentionBias);
  const probabilities = program.temp();
  program.stage(softmaxSpec(false), 'Softmax', [scores], [probabilities], { attributes: [intAttr('axis', -1)] });
  const context4 = program.temp();
  program.stage(matMulSpec, 'MatMul', [probabilities, v], [context4], cached ? {} : { epilogue: { activation: IDENTITY, bPerm: [0, 2, 1, 3] } });
  program.stage(transposeSpec, 'Transpose', [context4], [program.output(0)], { attributes: [intsAttr('perm', [0, 2, 1, 3])] });
  program.outputShape(0, (shape) => [shape[0], shape[1], shape[2] * shape[3]]);
}

export function numHeads(node: LoadContext['node']): number {
  if (!attributeOf(node, 'num_heads')) throw invalidNode(node, 'num_heads is required');
  const heads = intAttribute(node, 'num_heads', 0);
  if (heads < 1) throw invalidNode(node, `num_heads=${heads} (it must be at least 1)`);
  return heads;
}

/** A constant's columns [from, from + count) of its last dim, as FP32. */
function columns(tensor: { values: Float32Array; shape: number[] }, from: number, count: number): HostTensor {
  const width = tensor.shape[tensor.shape.length - 1];
  const rows = tensor.values.length / width;
  const out = new Float32Array(rows * count);
  for (let row = 0; row < rows; row++) out.set(tensor.values.subarray(row * width + from, row * width + from + count), row * count);
  return fp32(tensor.shape.length === 1 ? [count] : [rows, count], out);
}

/** Q, K and V widths: qkv_hidden_sizes, else the packed width in three equal parts. */
function qkvWidths(node: LoadContext['node'], packed: number): [number, number, number] {
  const sizes = intsAttribute(node, 'qkv_hidden_sizes');
  if (!sizes) {
    if (packed % 3 !== 0) throw invalidNode(node, `the packed Q/K/V width ${packed} does not split into three equal parts (set qkv_hidden_sizes)`);
    return [packed / 3, packed / 3, packed / 3];
  }
  if (sizes.length !== 3 || sizes[0] !== sizes[1] || sizes[0] + sizes[1] + sizes[2] !== packed) {
    throw invalidNode(node, `qkv_hidden_sizes [${sizes}] must be three sizes, Q's equal to K's, summing to the packed width ${packed}`);
  }
  return [sizes[0], sizes[1], sizes[2]];
}

/** The node's scale, or 1 / sqrt(head size) when it has none (or 0). */
function attentionScale(node: LoadContext['node'], qWidth: number, heads: number): number {
  const scale = floatAttribute(node, 'scale', 0);
  return scale === 0 ? 1 / Math.sqrt(qWidth / heads) : scale;
}

/** The node input's index when it is present. */
const presentInput = (node: LoadContext['node'], index: number): number | undefined => (node.input[index] ? index : undefined);

export const attentionSpec: OperatorSpec = {
  attributes: ['num_heads', 'unidirectional', 'qkv_hidden_sizes', 'scale', 'mask_filter_value', 'do_rotary', 'past_present_share_buffer', 'rotary_embedding_dim'],
  inputs: [2, 7],
  outputs: [1, 2],
  computesEveryOutput: true,
  // output, and present of the same type.
  types: ({ inputTypes }) => [inputTypes[0] ?? 'FP32', inputTypes[0] ?? 'FP32'],
  validate(node) {
    numHeads(node);
    if (booleanAttribute(node, 'do_rotary')) throw unsupported(node, 'do_rotary=1');
    if (booleanAttribute(node, 'past_present_share_buffer')) throw unsupported(node, 'past_present_share_buffer=1');
    if (node.input[6]) throw unsupported(node, 'past_sequence_length (a shared past / present buffer)');
  },
  device(context) {
    const { node } = context;
    const heads = numHeads(node);
    const weights = constantFloats(context, 1, 'weights');
    if (weights.shape.length !== 2) throw invalidNode(node, `weights have shape [${weights.shape}]; they must be (input_hidden_size, Dq + Dk + Dv)`);
    const [qWidth, kWidth, vWidth] = qkvWidths(node, weights.shape[1]);
    if (qWidth % heads !== 0 || vWidth % heads !== 0) throw invalidNode(node, `the Q / V widths ${qWidth} / ${vWidth} are not multiples of num_heads=${heads}`);
    const bias = node.input[2] ? constantFloats(context, 2, 'bias') : undefined;
    if (bias && product(bias.shape) !== weights.shape[1]) throw invalidNode(node, `bias has ${product(bias.shape)} elements, the packed weights ${weights.shape[1]} columns`);
    const program = createComposite(context);
    const x = program.input(0);
    const project = (from: number, width: number, what: string): Value => {
      const out = program.temp();
      const w = program.constant(`w${what}`, columns(weights, from, width));
      if (!bias) {
        program.stage(matMulSpec, 'MatMul', [x, w], [out]);
      } else {
        program.stage(matMulSpec, 'MatMul', [x, w, program.constant(`b${what}`, columns(bias, from, width))], [out], { epilogue: { activation: IDENTITY, bias: 2 } });
      }
      return out;
    };
    attentionCore(program, context, {
      q: project(0, qWidth, 'q'), k: project(qWidth, kWidth, 'k'), v: project(qWidth + kWidth, vWidth, 'v'), heads,
      scale: () => attentionScale(node, qWidth, heads), mask: presentInput(node, 3), maskFilter: floatAttribute(node, 'mask_filter_value', -10000),
      attentionBias: program.input(5), causal: booleanAttribute(node, 'unidirectional'),
      cache: program.input(4) || program.output(1) ? { stacked: true, past: program.input(4), present: program.output(1) } : undefined,
    });
    return program.build();
  },
};

export const multiHeadAttentionSpec: OperatorSpec = {
  attributes: ['num_heads', 'unidirectional', 'scale', 'mask_filter_value'],
  inputs: [1, 10],
  outputs: [1, 4],
  computesEveryOutput: true,
  // output, present_key, present_value (and qk, refused) of the query's type.
  types: ({ inputTypes }) => Array<Datatype>(4).fill(inputTypes[0] ?? 'FP32'),
  validate(node) {
    numHeads(node);
    if (!node.input[1] || !node.input[2]) throw unsupported(node, 'packed Q/K/V or K/V (key and value must be separate inputs)');
    if (Boolean(node.input[6]) !== Boolean(node.input[7])) throw invalidNode(node, 'past_key and past_value come together');
    if (node.input[8] || node.input[9]) throw unsupported(node, 'past_sequence_length or cache_indirection (a shared past / present buffer, beam search)');
    if (node.output[3]) throw unsupported(node, 'the qk output');
  },
  device(context) {
    const { node } = context;
    const heads = numHeads(node);
    const program = createComposite(context);
    let [q, k, v] = [program.input(0)!, program.input(1)!, program.input(2)!];
    program.check((inputs) => {
      for (const [index, what] of [[0, 'query'], [1, 'key'], [2, 'value']] as const) {
        const shape = required(inputs, index).shape;
        if (shape.length !== 3) throw unsupported(node, `${what} of shape [${shape}] (3-D (batch, length, hidden) only)`);
      }
    });
    if (node.input[3]) {
      // The packed bias splits at load into equal Q, K and V parts, each one broadcasting Add.
      const bias = constantFloats(context, 3, 'bias');
      const width = product(bias.shape) / 3;
      if (!Number.isInteger(width)) throw invalidNode(node, `bias has ${product(bias.shape)} elements, which do not split into equal Q, K and V parts`);
      program.check((inputs) => {
        const widths = [0, 1, 2].map((index) => required(inputs, index).shape[2]);
        if (widths.some((each) => each !== width)) throw invalidArgument(`MultiHeadAttention bias of ${3 * width} elements needs Q, K and V of width ${width}, got ${widths.join(', ')}`);
      });
      const biased = (value: Value, from: number, what: string) => {
        const out = program.temp();
        program.stage(addSpec, 'Add', [value, program.constant(`b${what}`, columns(bias, from, width))], [out]);
        return out;
      };
      [q, k, v] = [biased(q, 0, 'q'), biased(k, width, 'k'), biased(v, 2 * width, 'v')];
    }
    attentionCore(program, context, {
      q, k, v, heads, scale: (inputs) => attentionScale(node, required(inputs, 0).shape[2], heads), mask: presentInput(node, 4),
      maskFilter: floatAttribute(node, 'mask_filter_value', -10000), attentionBias: program.input(5), causal: booleanAttribute(node, 'unidirectional'),
      cache: [6, 7].some((index) => node.input[index]) || [1, 2].some((index) => node.output[index])
        ? { stacked: false, pastKeys: program.input(6), pastValues: program.input(7), presentKeys: program.output(1), presentValues: program.output(2) }
        : undefined,
    });
    return program.build();
  },
};
