/**
 * Shapes and values, the executor's leaf module: datatypes as the GPU stores them, host tensor
 * conversions, shape maths (broadcasting, strides, axes) and the static shape rules of the
 * operators. It imports nothing else of the executor.
 */
export { STORAGE_BYTES, type StorageType } from './storage.ts';
export {
  fromNumbers, fromStorageBytes, isComputable, kindOf, numberView, storageOf, toNumbers, toStorageBytes, typedArrayFor, typedArrayNameOf, type Precision,
} from './values.ts';
export { broadcastShapes, broadcastStrides, mergeDims, normalizeAxis, product, sameShape, showShape, stridesOf } from './shape.ts';
export {
  concatShape, flattenShape, gatherShape, padAmounts, rangeLength, reduceShape, reshapeShape, sliceAxes, softmaxProblem, splitSizes, squeezeShape, tileShape, transposeShape, unsqueezeShape,
} from './shape-rules.ts';
export { convTransposeGeometry, windowGeometry, type AutoPad, type WindowAttributes } from './window.ts';
