/**
 * MatMulNBits (com.microsoft), the weight-only quantized MatMul of int4 LLM exports:
 * Y = A W (+ bias) with W [K, N] stored as B [N, ceil(K / block_size), block_size * bits / 8]
 * bytes, each block of K values bit-packed low bits first, dequantized as
 *   W[k, n] = (q(n, k) - zero_point(n, block)) * scale(n, block)
 * (zero points packed like B, or unpacked floats; 2^(bits - 1) when absent). The weights are
 * constants, so they are dequantized once at load straight into the MatMul kernel's layout (f32
 * on the GPU: four bytes per weight where the file had bits / 8) and the product is one dispatch.
 * bits 2, 4 and 8 (which pack whole values into bytes); g_idx (deprecated) refused.
 */
import { invalidArgument } from '../../domain/errors.ts';
import type { NodeProto } from '../../onnx/model.ts';
import { numberView } from '../tensor/index.ts';
import { attributeOf, intAttribute, invalidNode, unsupported } from './attributes.ts';
import type { OperatorSpec } from './contract.ts';
import { required } from './parameters.ts';
import { fp32, sameAsInput } from './spec-parts.ts';
import { gemmOperator } from './contrib-fused-matmul.ts';

const SUPPORTED_BITS = [2, 4, 8];

/** The `index`-th value of `bits` bits in `bytes` from byte `offset`, low bits first. */
const unpack = (bytes: ArrayLike<number>, offset: number, index: number, bits: number): number =>
  (bytes[offset + Math.floor((index * bits) / 8)] >> ((index * bits) % 8)) & ((1 << bits) - 1);

/** A required INT attribute of at least 1. */
function positiveAttribute(node: NodeProto, name: string): number {
  if (!attributeOf(node, name)) throw invalidNode(node, `attribute ${name} is required`);
  const value = intAttribute(node, name, 0);
  if (value < 1) throw invalidNode(node, `${name}=${value} (it must be at least 1)`);
  return value;
}

export const matMulNBitsSpec: OperatorSpec = {
  attributes: ['K', 'N', 'bits', 'block_size', 'accuracy_level'],
  inputs: [3, 6],
  types: sameAsInput,
  validate(node) {
    for (const name of ['K', 'N', 'block_size']) positiveAttribute(node, name);
    const bits = intAttribute(node, 'bits', 4);
    if (!SUPPORTED_BITS.includes(bits)) throw unsupported(node, `bits=${bits} (2, 4 and 8 are supported)`);
    if (node.input[4]) throw unsupported(node, 'g_idx (deprecated)');
  },
  device(context) {
    const { node } = context;
    const [k, n, blockSize] = ['K', 'N', 'block_size'].map((name) => positiveAttribute(node, name));
    const bits = intAttribute(node, 'bits', 4);
    const [packed, scaleTensor, zeroTensor] = [1, 2, 3].map((index) => context.inputs[index]?.constant);
    if (!packed || !scaleTensor || (node.input[3] && !zeroTensor)) throw unsupported(node, 'weights, scales or zero points computed at run time (they must be constants)');
    const blocks = Math.ceil(k / blockSize);
    const blobBytes = (blockSize * bits) / 8;
    if (packed.data.length !== n * blocks * blobBytes) throw invalidNode(node, `B has ${packed.data.length} bytes; [N=${n}, ${blocks} blocks, ${blobBytes} bytes] needs ${n * blocks * blobBytes}`);
    const scales = numberView(scaleTensor);
    if (scales.length !== n * blocks) throw invalidNode(node, `scales have ${scales.length} values; N × blocks = ${n * blocks}`);
    const bytes = packed.data as Uint8Array;
    // Zero points: packed like B per row of N, or one float per block.
    const zeroRowBytes = Math.ceil((blocks * bits) / 8);
    const zeroPacked = zeroTensor?.datatype === 'UINT8';
    const zeros = zeroTensor ? numberView(zeroTensor) : undefined;
    if (zeros && zeros.length !== n * (zeroPacked ? zeroRowBytes : blocks)) {
      throw invalidNode(node, `zero_points have ${zeros.length} values; ${zeroPacked ? `packed [N, ${zeroRowBytes}]` : `[N, ${blocks}]`} needs ${n * (zeroPacked ? zeroRowBytes : blocks)}`);
    }
    const defaultZero = 2 ** (bits - 1);
    const weights = new Float32Array(k * n);
    for (let column = 0; column < n; column++) {
      for (let block = 0; block < blocks; block++) {
        const scale = scales[column * blocks + block];
        const zero = !zeros ? defaultZero : zeroPacked ? unpack(zeros, column * zeroRowBytes, block, bits) : zeros[column * blocks + block];
        const offset = (column * blocks + block) * blobBytes;
        for (let index = 0; index < blockSize && block * blockSize + index < k; index++) {
          weights[(block * blockSize + index) * n + column] = (unpack(bytes, offset, index, bits) - zero) * scale;
        }
      }
    }
    const operator = gemmOperator(context, { transA: false, transB: false, alpha: 1, constantB: fp32([k, n], weights), bias: node.input[5] ? 5 : undefined });
    return {
      ...operator,
      plan(inputs, maxPerDimension) {
        const shape = required(inputs, 0).shape;
        if (shape[shape.length - 1] !== k) throw invalidArgument(`MatMulNBits A has shape [${shape}]; its last dim must be K=${k}`);
        return operator.plan(inputs, maxPerDimension);
      },
    };
  },
};
