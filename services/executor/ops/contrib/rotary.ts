/**
 * RotaryEmbedding (com.microsoft): rotates the first R = rotary_embedding_dim (default the head
 * size) features of every head by the angles of its position, cos / sin from caches
 * [max_position, R / 2] gathered at position_ids [B, S]:
 *   half rotation (interleaved=0): x1 = x[:R/2], x2 = x[R/2:R]
 *     out[:R/2] = x1 cos - x2 sin, out[R/2:R] = x2 cos + x1 sin
 *   interleaved=1: pairs (x[2i], x[2i+1]) rotate alike
 * and keeps x[R:]. The input is [B, S, num_heads * H] or [B, num_heads, S, H]. Built from Gather,
 * Slice, Mul, Sub, Add and Concat stages (the caches must be constants, which fixes R at load).
 */
import { invalidArgument } from '../../../domain/errors.ts';
import { booleanAttribute, floatAttribute, intAttribute, invalidNode, unsupported } from '../attributes.ts';
import type { NodeInput, OperatorSpec } from '../contract.ts';
import { concatSpec, gatherSpec, sliceSpec } from '../data-movement.ts';
import { binarySpec } from '../elementwise.ts';
import { required } from '../parameters.ts';
import { sameAsInput } from '../spec-parts.ts';
import { createComposite, intAttr, intsAttr, type Composite, type Value } from './composite.ts';

const [mulSpec, addSpec, subSpec] = [binarySpec('Mul'), binarySpec('Add'), binarySpec('Sub')];

export const rotaryEmbeddingSpec: OperatorSpec = {
  attributes: ['interleaved', 'num_heads', 'rotary_embedding_dim', 'scale', 'is_packed_batching'],
  inputs: [4, 4],
  types: sameAsInput,
  validate(node) {
    booleanAttribute(node, 'interleaved');
    if (booleanAttribute(node, 'is_packed_batching')) throw unsupported(node, 'is_packed_batching=1');
    if (floatAttribute(node, 'scale', 1) !== 1) throw unsupported(node, `scale=${floatAttribute(node, 'scale', 1)}`);
  },
  device(context) {
    const { node } = context;
    const cache = context.inputs[2]?.constant;
    if (!cache || cache.shape.length !== 2) throw unsupported(node, 'a cos_cache computed at run time or not 2-D (it must be a constant [max_position, rotary_dim / 2])');
    const half = cache.shape[1];
    const rotary = intAttribute(node, 'rotary_embedding_dim', 0) || 2 * half;
    if (rotary !== 2 * half) throw invalidNode(node, `rotary_embedding_dim=${rotary} needs caches of width ${rotary / 2}, got ${half}`);
    const heads = intAttribute(node, 'num_heads', 0);
    const interleaved = booleanAttribute(node, 'interleaved');
    const program = createComposite(context);

    /** [B, S, N, H] (from [B, S, N*H]) or [B, N, S, H] as it is. */
    const headShape = (inputs: ReadonlyArray<NodeInput | undefined>): number[] => {
      const shape = required(inputs, 0).shape;
      if (shape.length === 4) return [...shape];
      if (shape.length !== 3) throw invalidArgument(`RotaryEmbedding input has shape [${shape}]; it must be (batch, sequence, hidden) or (batch, heads, sequence, head_size)`);
      const count = heads || shape[2] / rotary;
      if (!Number.isInteger(count) || shape[2] % count !== 0) throw invalidArgument(`RotaryEmbedding hidden size ${shape[2]} does not split into num_heads=${heads || 'hidden / rotary_dim'} heads`);
      return [shape[0], shape[1], count, shape[2] / count];
    };
    program.check((inputs) => {
      const [batch, ...rest] = headShape(inputs);
      const sequence = required(inputs, 0).shape.length === 4 ? rest[1] : rest[0];
      const head = rest[2];
      if (head < rotary) throw invalidArgument(`RotaryEmbedding head size ${head} is below rotary_embedding_dim ${rotary}`);
      const positions = required(inputs, 1).shape;
      if (positions.length !== 2 || positions[0] !== batch || positions[1] !== sequence) {
        throw invalidArgument(`RotaryEmbedding position_ids has shape [${positions}]; it must be (batch_size, sequence_length) = [${batch}, ${sequence}]`);
      }
    });
    // cos / sin [B, S, R/2] broadcast over the heads: [B, S, 1, R/2] or [B, 1, S, R/2], with a
    // trailing 1 against the interleaved pairs.
    const angles = (index: number): Value => {
      const gathered = program.temp();
      program.stage(gatherSpec, 'Gather', [program.input(index), program.input(1)], [gathered], { attributes: [intAttr('axis', 0)] });
      return program.view(gathered, (shape, inputs) => {
        const [batch, sequence] = shape;
        const broadcast = required(inputs, 0).shape.length === 4 ? [batch, 1, sequence, half] : [batch, sequence, 1, half];
        return interleaved ? [...broadcast, 1] : broadcast;
      });
    };
    const [cos, sin] = [angles(2), angles(3)];
    const x: Value = program.view(program.input(0)!, (_, inputs) => {
      const shape = headShape(inputs);
      return interleaved ? [...shape.slice(0, 3), shape[3] / 2, 2] : shape;
    });
    const slice = (from: number, to: number, axis: number): Value => {
      const out = program.temp();
      program.stage(sliceSpec, 'Slice', [x], [out], { attributes: [intsAttr('starts', [from]), intsAttr('ends', [to]), intsAttr('axes', [axis])], opset: 9 });
      return out;
    };
    // Interleaved pairs are the last axis of [..., H/2, 2]; the rotated ones the first R/2 of H/2.
    const [first, second] = interleaved ? [slice(0, 1, -1), slice(1, 2, -1)] : [slice(0, half, -1), slice(half, rotary, -1)];
    const pairs = (a: Value) => (interleaved ? sliceOf(program, a, half) : a);
    const [x1, x2] = [pairs(first), pairs(second)];
    const rotated = (a: Value, b: Value, combine: typeof subSpec, name: string): Value => {
      const [ac, bs, out] = [program.temp(), program.temp(), program.temp()];
      program.stage(mulSpec, 'Mul', [a, cos], [ac]);
      program.stage(mulSpec, 'Mul', [b, sin], [bs]);
      program.stage(combine, name, [ac, bs], [out]);
      return out;
    };
    const low = rotated(x1, x2, subSpec, 'Sub');
    const high = rotated(x2, x1, addSpec, 'Add');
    // Half rotation: [low, high, x[R:]] along H. Interleaved: the pairs back together, then x[R:]
    // (an empty slice when R is the head size).
    const withTail = (parts: Value[]) => {
      program.stage(concatSpec, 'Concat', parts, [program.output(0)], { attributes: [intAttr('axis', -1)] });
      program.outputShape(0, (_, inputs) => [...required(inputs, 0).shape]);
    };
    if (!interleaved) {
      const rest = program.temp();
      program.stage(sliceSpec, 'Slice', [x], [rest], { attributes: [intsAttr('starts', [rotary]), intsAttr('ends', [2 ** 31 - 1]), intsAttr('axes', [-1])], opset: 9 });
      withTail([low, high, rest]);
      return program.build();
    }
    const joined = program.temp();
    program.stage(concatSpec, 'Concat', [low, high], [joined], { attributes: [intAttr('axis', -1)] });
    const flat = program.view(joined, (shape) => [...shape.slice(0, 3), shape[3] * 2]);
    const rest = program.temp();
    const x4 = program.view(program.input(0)!, (_, inputs) => headShape(inputs));
    program.stage(sliceSpec, 'Slice', [x4], [rest], { attributes: [intsAttr('starts', [rotary]), intsAttr('ends', [2 ** 31 - 1]), intsAttr('axes', [-1])], opset: 9 });
    withTail([flat, rest]);
    return program.build();
  },
};

/** The first `count` pairs of an interleaved slice [..., H/2, 1]: [..., count, 1]. */
function sliceOf(program: Composite, value: Value, count: number): Value {
  const out = program.temp();
  program.stage(sliceSpec, 'Slice', [value], [out], { attributes: [intsAttr('starts', [0]), intsAttr('ends', [count]), intsAttr('axes', [-2])], opset: 9 });
  return out;
}
