/**
 * GroupQueryAttention (com.microsoft), the attention of onnxruntime-genai's LLM exports: num_heads
 * query heads share kv_num_heads key / value heads (query head n reads kv head n / (num_heads /
 * kv_num_heads)), always causal, with a key / value cache in [B, kv_heads, length, H]:
 *   present = past followed by this step's keys (values), T = P + S
 *   output  = Softmax(scale * Q K^T, keys after P + s hidden, + attention_bias) V
 * The groups are a view: Q [B, S, kv_heads, group, H] read as [B, kv_heads, group, S, H] against
 * K [B, kv_heads, 1, T, H], so no key or value is copied per query head.
 *
 * seqlens_k and total_sequence_length are read on the host: each batch must hold P + S tokens
 * (seqlens_k = P + S - 1, no right padding inside the past) in a past of exactly P positions;
 * padded batches, a past buffer shared with present, local_window_size, softcap and
 * smooth_softmax are refused. do_rotary rotates Q and K at positions P .. P + S - 1 first
 * (contrib-rotary.ts, the caches constants), before K joins the cache.
 */
import { failedPrecondition, invalidArgument } from '../../domain/errors.ts';
import type { Datatype } from '../../onnx/datatypes.ts';
import { numberView } from '../tensor/index.ts';
import { attributeOf, booleanAttribute, floatAttribute, intAttribute, invalidNode, qualifiedOpType, unsupported } from './attributes.ts';
import type { NodeInput, OperatorSpec } from './contract.ts';
import { transposeSpec } from './data-movement.ts';
import { binarySpec } from './elementwise.ts';
import { matMulSpec } from './gemm-conv.ts';
import { required } from './parameters.ts';
import { softmaxSpec } from './softmax.ts';
import { causalOperator, headsView, keyValueCache, numHeads, scaleBy } from './contrib-attention.ts';
import { createComposite, intAttr, intsAttr } from './contrib-composite.ts';
import { rotate } from './contrib-rotary.ts';

const addSpec = binarySpec('Add');

export const groupQueryAttentionSpec: OperatorSpec = {
  attributes: ['num_heads', 'kv_num_heads', 'scale', 'do_rotary', 'rotary_interleaved', 'local_window_size', 'softcap', 'smooth_softmax', 'qk_output'],
  inputs: [7, 12],
  outputs: [1, 3],
  computesEveryOutput: true,
  parameters: [5, 6],
  types: ({ inputTypes }) => Array<Datatype>(3).fill(inputTypes[0] ?? 'FP32'),
  validate(node) {
    numHeads(node);
    if (!attributeOf(node, 'kv_num_heads')) throw invalidNode(node, 'kv_num_heads is required');
    const [heads, kvHeads] = [intAttribute(node, 'num_heads', 0), intAttribute(node, 'kv_num_heads', 0)];
    if (kvHeads < 1 || heads % kvHeads !== 0) throw invalidNode(node, `num_heads=${heads} is not a multiple of kv_num_heads=${kvHeads}`);
    if (!node.input[1] || !node.input[2]) throw unsupported(node, 'packed Q/K/V (key and value must be separate inputs)');
    if (!node.input[3] || !node.input[4]) throw invalidNode(node, 'past_key and past_value are required');
    if (booleanAttribute(node, 'do_rotary') && (!node.input[7] || !node.input[8])) throw invalidNode(node, 'do_rotary=1 needs cos_cache and sin_cache');
    if (intAttribute(node, 'local_window_size', -1) !== -1) throw unsupported(node, `local_window_size=${intAttribute(node, 'local_window_size', -1)}`);
    if (floatAttribute(node, 'softcap', 0) !== 0) throw unsupported(node, 'softcap');
    if (booleanAttribute(node, 'smooth_softmax')) throw unsupported(node, 'smooth_softmax=1');
    if (intAttribute(node, 'qk_output', 0) !== 0) throw unsupported(node, 'qk_output');
    if (node.input[9] || node.input[11]) throw unsupported(node, 'position_ids or head_sink');
  },
  device(context) {
    const { node } = context;
    const heads = numHeads(node);
    const kvHeads = intAttribute(node, 'kv_num_heads', 0);
    const group = heads / kvHeads;
    const program = createComposite(context);
    const refuse = (detail: string) => failedPrecondition(`operator '${qualifiedOpType(node)}' (node '${node.name}') is not supported with ${detail}`);
    let scale = 1;
    program.check((inputs: ReadonlyArray<NodeInput | undefined>) => {
      const [batch, queries, width] = required(inputs, 0).shape;
      const past = required(inputs, 3).shape;
      if (past.length !== 4 || past[0] !== batch || past[1] !== kvHeads) {
        throw invalidArgument(`GroupQueryAttention past_key has shape [${past}]; it must be (batch_size, kv_num_heads=${kvHeads}, past_length, head_size)`);
      }
      const total = past[2] + queries;
      const lengths = inputs[5]?.value;
      const totalLength = inputs[6]?.value;
      if (!lengths || !totalLength) throw refuse('seqlens_k or total_sequence_length unknown on the host');
      const totals = Array.from(numberView(lengths), (value) => value + 1);
      if (Number(numberView(totalLength)[0]) !== total || totals.some((each) => each !== total)) {
        throw refuse(`seqlens_k + 1 = [${totals}] and total_sequence_length ${numberView(totalLength)[0]} other than past + new = ${total} for every batch (padded batches or a shared past buffer)`);
      }
      const custom = floatAttribute(node, 'scale', 0);
      scale = custom === 0 ? 1 / Math.sqrt(width / heads) : custom;
    });
    program.check((inputs) => {
      const shape = required(inputs, 0).shape;
      if (shape.length !== 3 || shape[2] % heads !== 0) throw invalidArgument(`GroupQueryAttention query has shape [${shape}]; it must be (batch, sequence, num_heads * head_size)`);
    });
    // Q and K as [B, S, heads, H]: viewed, or rotated at positions P .. P + S - 1 (do_rotary).
    let [q4, k4] = [headsView(program, program.input(0)!, heads, 'Q'), headsView(program, program.input(1)!, kvHeads, 'K')];
    if (booleanAttribute(node, 'do_rotary')) {
      const cache = context.inputs[7]?.constant;
      if (!cache || cache.shape.length !== 2) throw unsupported(node, 'a cos_cache computed at run time or not 2-D (it must be a constant [max_position, rotary_dim / 2])');
      const positions = program.table('INT64', (inputs) => {
        const [batch, queries] = required(inputs, 0).shape;
        const past = required(inputs, 3).shape[2];
        return { datatype: 'INT64', shape: [batch, queries], data: BigInt64Array.from({ length: batch * queries }, (_, index) => BigInt(past + (index % queries))) };
      });
      const rotated = (index: number, count: number) => {
        const into = program.temp();
        rotate(program, {
          x: program.input(index)!, shapeOf: (inputs) => required(inputs, index).shape, heads: count, rotary: 2 * cache.shape[1],
          interleaved: booleanAttribute(node, 'rotary_interleaved'), positions, cos: program.input(7)!, sin: program.input(8)!, into,
        });
        return into;
      };
      [q4, k4] = [rotated(0, heads), rotated(1, kvHeads)];
    }
    const q = program.view(q4, (shape) => [shape[0], shape[1], kvHeads, group, shape[3]]);
    const [keys, values] = keyValueCache(program, k4, headsView(program, program.input(2)!, kvHeads, 'V'), {
      stacked: false, pastKeys: program.input(3), pastValues: program.input(4), presentKeys: program.output(1), presentValues: program.output(2),
    });
    const perGroup = (value: typeof keys) => program.view(value, (shape) => [shape[0], shape[1], 1, shape[2], shape[3]]);
    let scores = program.temp();
    program.stage(matMulSpec, 'MatMul', [q, perGroup(keys)], [scores], {
      epilogue: { get activation() { return scaleBy(scale); }, aPerm: [0, 2, 3, 1, 4], bPerm: [0, 1, 2, 4, 3] },
    });
    const masked = program.temp();
    program.kernel(causalOperator(context), [scores], [masked]);
    scores = masked;
    if (node.input[10]) {
      // attention_bias is per query head: the scores [B, kv_heads, group, S, T] are [B, heads, S, T].
      const biased = program.temp();
      program.stage(addSpec, 'Add', [program.view(scores, (shape) => [shape[0], shape[1] * shape[2], shape[3], shape[4]]), program.input(10)], [biased]);
      scores = program.view(biased, (shape) => [shape[0], kvHeads, group, shape[2], shape[3]]);
    }
    const probabilities = program.temp();
    program.stage(softmaxSpec(false), 'Softmax', [scores], [probabilities], { attributes: [intAttr('axis', -1)] });
    const grouped = program.temp();
    program.stage(matMulSpec, 'MatMul', [probabilities, perGroup(values)], [grouped]);
    program.stage(transposeSpec, 'Transpose', [grouped], [program.output(0)], { attributes: [intsAttr('perm', [0, 3, 1, 2, 4])] });
    program.outputShape(0, (shape) => [shape[0], shape[1], shape[2] * shape[3] * shape[4]]);
    return program.build();
  },
};
