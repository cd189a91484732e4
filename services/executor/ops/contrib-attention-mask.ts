/**
 * The additive term an attention mask adds to the scores [B, heads, S, T], as ORT's CPU kernel
 * prepares it: mask_filter_value where a key is masked, 0 elsewhere. Every mask format ORT's
 * Attention takes but Megatron's 4-D one, each decided per plan from the mask's shape:
 *   (B, T) or (B, S, T)  raw masks: a value <= 0 masks the key (for the integers masks hold,
 *                        filter - filter * clip(mask, 0, 1))
 *   (B)                  right padding: keys at or after mask[b] are masked
 *   (2 * B)              mask[b] as above, and keys before mask[B + b] (left padding)
 * Position ranges are clip(end - t, 0, 1) and clip(t + 1 - start, 0, 1) of the cast mask and a
 * table of key positions t, multiplied and turned into the filter by the last pass's epilogue.
 * The output is [B, 1, 1 or S, T], which broadcasts over the heads (and the queries).
 */
import { failedPrecondition, invalidArgument } from '../../domain/errors.ts';
import {
  BINARY_OPS, binaryDispatch, binaryVariant, copyDispatch, copyVariants, IDENTITY, UNARY_OPS, unaryDispatch, unaryVariant, type UnaryFunction,
} from '../kernels/index.ts';
import { product, toStorageBytes, type StorageType } from '../tensor/index.ts';
import { qualifiedOpType } from './attributes.ts';
import type { BindingRef, DeviceOperator, LoadContext, PlannedKernel } from './contract.ts';
import { required } from './parameters.ts';
import { fp32, inputStorage, outputStorage } from './spec-parts.ts';

const CLIP_01: UnaryFunction = { op: UNARY_OPS.Clip, alpha: 0, beta: 1 };
const VARIANT = { castMask: 0, unary: 1, binary: 2, copy: 3 } as const;

/** `values` as a table in `storage` (raw 32-bit words). */
function table(values: Float32Array, storage: StorageType): Uint32Array {
  const bytes = toStorageBytes(fp32([values.length], values), storage, 'attention mask positions');
  const words = new Uint32Array(Math.max(1, Math.ceil(bytes.byteLength / 4)));
  new Uint8Array(words.buffer).set(bytes);
  return words;
}

/**
 * Stage inputs: the int32 mask (node input `maskIndex`) and the scores (for S and T only); stage
 * output: the additive term [B, 1, 1 or S, T].
 */
export function maskTermOperator(context: LoadContext, maskIndex: number, filter: number): DeviceOperator {
  const storage = outputStorage(context);
  // kept (0 or 1) -> filter - filter * kept.
  const toFilter: UnaryFunction = { op: UNARY_OPS.Scale, alpha: -filter, beta: filter };
  const refuse = (detail: string) => failedPrecondition(`operator '${qualifiedOpType(context.node)}' (node '${context.node.name}') is not supported with ${detail}`);
  return {
    kind: 'kernel',
    variants: [unaryVariant(inputStorage(context, maskIndex), storage, 'float'), unaryVariant(storage, storage, 'float'), binaryVariant(storage, storage, storage, false), ...copyVariants(storage)],
    plan(inputs, maxPerDimension) {
      const mask = required(inputs, 0).shape;
      const scores = required(inputs, 1).shape;
      const [batch, , queries, keys] = scores;
      const scratch: number[] = [];
      const newScratch = (count: number): BindingRef => ({ scratch: scratch.push(count) - 1 });
      const dispatches: PlannedKernel[] = [];
      const unary = (variant: number, count: number, fn: UnaryFunction, from: BindingRef, to: BindingRef) =>
        dispatches.push({ ...unaryDispatch(count, fn, maxPerDimension), variant, bindings: [from, to] });
      const binary = (op: number, fn: UnaryFunction, a: { shape: number[]; at: BindingRef }, b: { shape: number[]; at: BindingRef }, outShape: number[], to: BindingRef) =>
        dispatches.push({ ...binaryDispatch(op, fn, a.shape, b.shape, outShape, maxPerDimension), variant: VARIANT.binary, bindings: [a.at, b.at, to] });
      const expect = (shape: readonly number[], what: string) => {
        if (shape.some((dim, index) => dim !== mask[index]) || shape.length !== mask.length) throw invalidArgument(`the attention mask has shape [${mask}]; ${what} [${shape}]`);
      };

      if (mask.length === 2 || mask.length === 3) {
        const raw = mask.length === 2 ? [batch, keys] : [batch, queries, keys];
        expect(raw, 'a raw mask must be');
        const kept = newScratch(product(mask));
        unary(VARIANT.castMask, product(mask), CLIP_01, { input: 0 }, kept);
        unary(VARIANT.unary, product(mask), toFilter, kept, { output: 0 });
        return { outputShapes: [mask.length === 2 ? [batch, 1, 1, keys] : [batch, 1, queries, keys]], dispatches, scratch };
      }
      if (mask.length !== 1 || (mask[0] !== batch && mask[0] !== 2 * batch)) {
        throw refuse(`a mask of shape [${mask}] (raw (batch, total_length) and (batch, length, total_length) masks, or (batch) / (2 * batch) positions)`);
      }
      const positions = Float32Array.from({ length: keys }, (_, t) => t);
      const tables = [table(positions, storage), table(positions.map((t) => t + 1), storage)];
      const values = newScratch(mask[0]);
      unary(VARIANT.castMask, mask[0], IDENTITY, { input: 0 }, values);
      // Keys before the end: clip(end - t, 0, 1).
      const beforeEnd = newScratch(batch * keys);
      binary(BINARY_OPS.Sub, CLIP_01, { shape: [batch, 1], at: values }, { shape: [1, keys], at: { table: 0 } }, [batch, keys], beforeEnd);
      if (mask[0] === batch) {
        unary(VARIANT.unary, batch * keys, toFilter, beforeEnd, { output: 0 });
        return { outputShapes: [[batch, 1, 1, keys]], dispatches, scratch, tables };
      }
      // The starts are the second half: copied out, then keys from the start: clip(t + 1 - start, 0, 1).
      const starts = newScratch(batch);
      const copy = copyDispatch({ shape: [batch], inStrides: [1], outStrides: [1], inOffset: batch, outOffset: 0 }, maxPerDimension);
      dispatches.push({ ...copy, variant: VARIANT.copy + (copy.variant ?? 0), bindings: [values, starts] });
      const fromStart = newScratch(batch * keys);
      binary(BINARY_OPS.Sub, CLIP_01, { shape: [1, keys], at: { table: 1 } }, { shape: [batch, 1], at: starts }, [batch, keys], fromStart);
      // kept = beforeEnd * fromStart, and the filter where it is 0, in the Mul's epilogue.
      binary(BINARY_OPS.Mul, toFilter, { shape: [batch, keys], at: beforeEnd }, { shape: [batch, keys], at: fromStart }, [batch, keys], { output: 0 });
      return { outputShapes: [[batch, 1, 1, keys]], dispatches, scratch, tables };
    },
  };
}
