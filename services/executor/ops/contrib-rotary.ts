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
import { invalidArgument } from '../../domain/errors.ts';
import { booleanAttribute, floatAttribute, intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { NodeInput, OperatorSpec } from './contract.ts';
import { concatSpec, gatherSpec, sliceSpec } from './data-movement.ts';
import { binarySpec } from './elementwise.ts';
import { required } from './parameters.ts';
import { sameAsInput } from './spec-parts.ts';
import { createComposite, intAttr, intsAttr, type Composite, type Value } from './contrib-composite.ts';

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

    program.check((inputs) => {
      const shape = required(inputs, 0).shape;
      const [batch, sequence] = shape.length === 4 ? [shape[0], shape[2]] : shape;
      const positions = required(inputs, 1).shape;
      if (positions.length !== 2 || positions[0] !== batch || positions[1] !== sequence) {
        throw invalidArgument(`RotaryEmbedding position_ids has shape [${positions}]; it must be (batch_size, sequence_length) = [${batch}, ${sequence}]`);
      }
    });
    rotate(program, {
      x: program.input(0)!, shapeOf: (inputs) => required(inputs, 0).shape, heads, rotary, interleaved,
      positions: program.input(1)!, cos: program.input(2)!, sin: program.input(3)!, into: program.output(0)!,
    });
    program.outputShape(0, (_, inputs) => [...required(inputs, 0).shape]);
    return program.build();
  },
};

/** What rotate() rotates, and with which angles. */
export interface Rotation {
  /** [B, S, heads * H] or [B, heads, S, H], whose shape `shapeOf` reads from the node's inputs. */
  readonly x: Value;
  readonly shapeOf: (inputs: ReadonlyArray<NodeInput | undefined>) => readonly number[];
  /** 0: hidden / rotary (one head per R features). */
  readonly heads: number;
  readonly rotary: number;
  readonly interleaved: boolean;
  /** Position ids [B, S] (any integer type) into the caches [max_position, R / 2]. */
  readonly positions: Value;
  readonly cos: Value;
  readonly sin: Value;
  /** Written [B, S, heads, H] (or [B, heads, S, H]). */
  readonly into: Value;
}

/** The stages of a rotary embedding of `rotation.x` into `rotation.into`. */
export function rotate(program: Composite, rotation: Rotation): void {
  const { rotary, interleaved, heads } = rotation;
  const half = rotary / 2;
  /** [B, S, N, H] (from [B, S, N*H]) or [B, N, S, H] as it is. */
  const headShape = (inputs: ReadonlyArray<NodeInput | undefined>): number[] => {
    const shape = rotation.shapeOf(inputs);
    if (shape.length === 4) return [...shape];
    if (shape.length !== 3) throw invalidArgument(`a rotary embedding's input has shape [${shape}]; it must be (batch, sequence, hidden) or (batch, heads, sequence, head_size)`);
    const count = heads || shape[2] / rotary;
    if (!Number.isInteger(count) || shape[2] % count !== 0) throw invalidArgument(`a rotary embedding's hidden size ${shape[2]} does not split into num_heads=${heads || 'hidden / rotary_dim'} heads`);
    return [shape[0], shape[1], count, shape[2] / count];
  };
  program.check((inputs) => {
    const head = headShape(inputs)[3];
    if (head < rotary) throw invalidArgument(`a rotary embedding's head size ${head} is below the rotary dim ${rotary}`);
  });
  // cos / sin [B, S, R/2] broadcast over the heads: [B, S, 1, R/2] or [B, 1, S, R/2], with a
  // trailing 1 against the interleaved pairs.
  const angles = (cache: Value): Value => {
    const gathered = program.temp();
    program.stage(gatherSpec, 'Gather', [cache, rotation.positions], [gathered], { attributes: [intAttr('axis', 0)] });
    return program.view(gathered, (shape, inputs) => {
      const [batch, sequence] = shape;
      const broadcast = rotation.shapeOf(inputs).length === 4 ? [batch, 1, sequence, half] : [batch, sequence, 1, half];
      return interleaved ? [...broadcast, 1] : broadcast;
    });
  };
  const [cos, sin] = [angles(rotation.cos), angles(rotation.sin)];
  const x4 = program.view(rotation.x, (_, inputs) => headShape(inputs));
  const x: Value = interleaved ? program.view(rotation.x, (_, inputs) => {
    const shape = headShape(inputs);
    return [...shape.slice(0, 3), shape[3] / 2, 2];
  }) : x4;
  const slice = (from: number, to: number, axis: number, value: Value = x): Value => {
    const out = program.temp();
    program.stage(sliceSpec, 'Slice', [value], [out], { attributes: [intsAttr('starts', [from]), intsAttr('ends', [to]), intsAttr('axes', [axis])], opset: 9 });
    return out;
  };
  // Interleaved pairs are the last axis of [..., H/2, 2]; the rotated ones the first R/2 of H/2.
  const [first, second] = interleaved ? [slice(0, 1, -1), slice(1, 2, -1)] : [slice(0, half, -1), slice(half, rotary, -1)];
  const pairs = (a: Value) => (interleaved ? slice(0, half, -2, a) : a);
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
  let rotatedPart: Value[] = [low, high];
  if (interleaved) {
    const joined = program.temp();
    program.stage(concatSpec, 'Concat', [low, high], [joined], { attributes: [intAttr('axis', -1)] });
    rotatedPart = [program.view(joined, (shape) => [...shape.slice(0, 3), shape[3] * 2])];
  }
  const rest = slice(rotary, 2 ** 31 - 1, -1, x4);
  program.stage(concatSpec, 'Concat', [...rotatedPart, rest], [rotation.into], { attributes: [intAttr('axis', -1)] });
}
